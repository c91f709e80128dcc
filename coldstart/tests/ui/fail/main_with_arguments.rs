#[coldstart::main]
async fn main(args: Vec<String>) {}
