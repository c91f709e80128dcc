// A worker count without a flavor asks for the multi-thread scheduler, where the
// clock cannot be paused: refused here, as tokio refuses it, not a panic at run time.
#[coldstart::test(worker_threads = 2, start_paused = true)]
async fn paused() {}

fn main() {}
