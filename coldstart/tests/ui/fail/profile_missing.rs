#[coldstart::main(profile = "no-such.profile")]
async fn main() {}
