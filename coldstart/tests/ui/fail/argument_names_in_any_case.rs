// Names in any case are the same argument: the error is spanned at the name as
// written, and one name in two cases is given twice.
#[coldstart::main(flavor = "current_thread", WORKER_THREADS = 2)]
async fn main() {}

#[coldstart::test(flavor = "current_thread", Flavor = "multi_thread")]
async fn twice() {}
