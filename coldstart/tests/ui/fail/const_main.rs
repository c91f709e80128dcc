// `const` and a bad argument: both are said, and the `.await` adds no error.
#[coldstart::main(flavor = "fast")]
const async fn main() {
    std::future::ready(()).await;
}
