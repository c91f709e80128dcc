// tokio reads its arguments' names in any case (`Flavor`, `WORKER_THREADS`): an
// attribute written so is renamed, nothing else changed.
#[coldstart::main(Flavor = "multi_thread", WORKER_THREADS = 2, Name = "api")]
async fn main() {
    let plan = coldstart::plan().unwrap();
    assert_eq!(plan.worker_threads.value, 2);
    assert_eq!(plan.flavor.value, coldstart::Flavor::MultiThread);
    assert_eq!(tokio::runtime::Handle::current().name(), Some("api"));
}
