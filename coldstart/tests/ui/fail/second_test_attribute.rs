// `#[test]` with #[coldstart::test] would run the test twice: refused, as tokio does.
#[coldstart::test]
#[test]
async fn twice() {}

fn main() {}
