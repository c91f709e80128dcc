#[coldstart::main(fast)]
async fn main() {}
