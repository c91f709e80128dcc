#[coldstart::main(flavor = "multi_thread", flavor = "current_thread")]
async fn main() {}
