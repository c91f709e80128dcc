#[coldstart::main]
fn main() {}
