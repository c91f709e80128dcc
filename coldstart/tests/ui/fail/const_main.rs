#[coldstart::main]
const async fn main() {
    std::future::ready(()).await;
}
