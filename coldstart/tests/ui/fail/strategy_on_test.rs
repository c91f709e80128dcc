#[coldstart::test(strategy = "minimal")]
async fn t() {}

fn main() {}
