//! Items whose names the expansion must keep apart: a raw identifier, and a function
//! and a static that differ only in case.

use std::sync::atomic::{AtomicUsize, Ordering};

static RAN: AtomicUsize = AtomicUsize::new(0);

#[coldstart::init]
fn r#match() {
    RAN.fetch_add(1, Ordering::SeqCst);
}

#[coldstart::init]
fn config() {
    RAN.fetch_add(1, Ordering::SeqCst);
}

#[coldstart::init]
static CONFIG: u8 = 7;

#[coldstart::main]
async fn main() {
    assert_eq!(RAN.load(Ordering::SeqCst), 2);
    assert_eq!(*CONFIG, 7);
    let names: Vec<String> = coldstart::inits().iter().map(|r| r.name.to_string()).collect();
    let here = |item: &str| format!("{}::{item}", module_path!());
    assert_eq!(names, [here("CONFIG"), here("config"), here("match")]);
}
