// An existing #[tokio::main(...)] renamed, nothing else changed.
#[coldstart::main(flavor = "multi_thread", worker_threads = 2, name = "api")]
async fn main() {
    let plan = coldstart::plan().unwrap();
    assert_eq!(plan.worker_threads.value, 2);
    assert_eq!(plan.flavor.value, coldstart::Flavor::MultiThread);
    assert_eq!(tokio::runtime::Handle::current().name(), Some("api"));
}
