//! A program that builds its own `Runtime` with the invocation layer gets the shutdown
//! `run` prepares: the hooks capped to what Lambda gives after SIGTERM (here 250 ms:
//! no registration of coldstart's extension was started, so a SIGTERM would come only
//! through another extension's). Uncapped, a final flush planned for its own deadline
//! was cut off by Lambda's kill without a word. Its own binary, without the test
//! harness: the Lambda variables and the cap are the process's.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use tower_layer::Layer as _;

fn main() {
    let vars = [
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
        ("AWS_LAMBDA_FUNCTION_NAME", "own"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    ];
    for (key, value) in vars {
        // SAFETY: nothing else runs yet.
        unsafe { std::env::set_var(key, value) };
    }
    assert_eq!(
        coldstart_runtime::lifecycle::hook_cap(),
        std::time::Duration::MAX
    );
    let layer = coldstart_lambda::InvocationLayer::from_env().unwrap();
    // The layer wraps any service; applying it is what `Runtime::layer` does.
    let _service = layer.layer(());
    assert_eq!(
        coldstart_runtime::lifecycle::hook_cap(),
        coldstart_lambda::EXTERNAL_SHUTDOWN_BUDGET
    );
    println!("own_runtime: the invocation layer capped the shutdown hooks at 250 ms");
}
