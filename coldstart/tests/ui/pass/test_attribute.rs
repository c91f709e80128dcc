// The arguments parse. trybuild builds without `--test`, so rustc removes `#[test]`
// functions before their bodies are checked: the bodies are compiled, and run, by
// `tests/test_attribute.rs`.
#[coldstart::test]
async fn current_thread_by_default() {}

#[coldstart::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread() {}

fn main() {}
