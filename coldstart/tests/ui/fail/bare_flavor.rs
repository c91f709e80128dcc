// A scheduler named alone gets tokio's hint, not the list of arguments.
#[coldstart::main(current_thread)]
async fn main() {}
