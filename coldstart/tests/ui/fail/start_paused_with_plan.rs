#[coldstart::main(start_paused = true, strategy = "minimal")]
async fn main() {}
