#[coldstart::main]
async fn main() {
    assert!(coldstart::plan().is_some());
}
