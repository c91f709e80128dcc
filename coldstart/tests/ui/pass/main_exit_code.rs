// Any type Rust's `main` may return, such as `ExitCode`, not only `()` and `Result`.
#[coldstart::main]
async fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
