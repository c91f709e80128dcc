#[coldstart::main(worker_threads = -1)]
async fn main() {}

#[coldstart::test(name = "")]
async fn blank_name() {}

#[coldstart::main(thread_stack_size = 1.5M)]
async fn float_size() {}
