use std::sync::atomic::{AtomicUsize, Ordering};

static RAN: AtomicUsize = AtomicUsize::new(0);

#[coldstart::init]
fn plain() {
    RAN.fetch_add(1, Ordering::SeqCst);
}

#[coldstart::init(critical)]
fn fallible() -> Result<(), std::io::Error> {
    RAN.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[coldstart::init(name = "shapes: async")]
async fn asynchronous() {
    RAN.fetch_add(1, Ordering::SeqCst);
}

#[coldstart::init(critical)]
async fn asynchronous_fallible() -> Result<(), String> {
    RAN.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[coldstart::init(deferred, fatal)]
pub static TABLE: Vec<u32> = (1..=3).collect();

#[coldstart::init(crate = "::coldstart")]
static ANSWER: u64 = 42;

#[coldstart::main]
async fn main() {
    assert_eq!(RAN.load(Ordering::SeqCst), 4);
    assert_eq!(*ANSWER, 42);
    assert_eq!(TABLE.iter().sum::<u32>(), 6);
    let names: Vec<String> = coldstart::inits().iter().map(|r| r.name.to_string()).collect();
    let here = |item: &str| format!("{}::{item}", module_path!());
    let mut expected = vec![
        here("ANSWER"),
        here("TABLE"),
        here("asynchronous_fallible"),
        here("fallible"),
        here("plain"),
        "shapes: async".to_string(),
    ];
    expected.sort();
    assert_eq!(names, expected);
}
