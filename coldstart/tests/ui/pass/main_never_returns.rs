// A `main` that never returns (`-> !`), as with `#[tokio::main]`.
#[coldstart::main]
async fn main() -> ! {
    std::future::ready(()).await;
    std::process::exit(0)
}
