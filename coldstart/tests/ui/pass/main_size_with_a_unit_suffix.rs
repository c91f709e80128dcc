// A size written as a number with its unit, unquoted: the unit is part of the value
// (it was dropped, and `2M` read as 2 bytes); a Rust integer type is not.
#[coldstart::main(thread_stack_size = 2M, max_blocking_threads = 4usize)]
async fn main() {
    let plan = coldstart::plan().unwrap();
    assert_eq!(plan.thread_stack_size.value, 2 << 20);
    assert_eq!(plan.max_blocking_threads.value, 4);
}
