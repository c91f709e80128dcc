#[coldstart::test]
async fn current_thread_by_default() {}

#[coldstart::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread() {}

fn main() {}
