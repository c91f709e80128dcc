// Refused, as tokio does; the body is still checked as an async body: no error of
// rustc's about its `.await`.
#[coldstart::main]
async fn main(args: Vec<String>) {
    std::future::ready(()).await;
}
