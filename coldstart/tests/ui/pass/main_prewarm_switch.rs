//! The attribute takes every value the variable takes.
#[coldstart::main(prewarm = "on")]
async fn main() {
    assert!(coldstart::plan().unwrap().prewarm.value);
}
