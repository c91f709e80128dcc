#[coldstart::main(worker_threads = -1)]
async fn main() {}

#[coldstart::test(name = "")]
async fn blank_name() {}

#[coldstart::main(thread_stack_size = 1.5M)]
async fn float_size() {}

// A negated literal followed by another argument (syn then parses it as an
// expression) is read as one all the same.
#[coldstart::main(worker_threads = -1, flavor = "multi_thread")]
async fn negative_then_more() {}

const WORKERS: usize = 2;

#[coldstart::main(worker_threads = WORKERS)]
async fn a_constant() {}
