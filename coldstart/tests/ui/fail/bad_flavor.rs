#[coldstart::main(flavor = "fast")]
async fn main() {}
