#[coldstart::main(crate = "reexprt::cs")]
async fn main() {}
