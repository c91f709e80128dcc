#[coldstart::main(strategy = "minimal", max_blocking_threads = 8, thread_stack_size = "1M", prewarm = false)]
async fn main() {
    let plan = coldstart::plan().unwrap();
    assert_eq!(plan.strategy.value, coldstart::Strategy::Minimal);
    assert_eq!(plan.max_blocking_threads.value, 8);
    assert_eq!(plan.thread_stack_size.value, 1 << 20);
}
