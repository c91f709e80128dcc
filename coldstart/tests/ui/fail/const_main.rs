#[coldstart::main]
const async fn main() {}
