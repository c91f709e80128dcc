// A program's own names where `main` is do not reach into the expansion: a
// `describe` method on every type (a blanket trait, as a glob import brings) and a
// constant named `output` or `body`.
#![allow(non_upper_case_globals, dead_code)]

trait Describe {
    fn describe(&self) -> Option<String> {
        Some("the program's".into())
    }
}

impl<T> Describe for T {}

const output: u8 = 0;
const body: u8 = 0;

#[coldstart::main]
async fn main() -> Result<(), String> {
    assert!(coldstart::plan().is_some());
    Ok(())
}
