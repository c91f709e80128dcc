#[coldstart::test(flavor)]
async fn a_test() {}

fn main() {}
