// As `#[tokio::main(start_paused = true)]` without tokio's `test-util`: a compile
// error, not a panic when the program runs.
#[coldstart::main(flavor = "current_thread", start_paused = true)]
async fn main() {}
