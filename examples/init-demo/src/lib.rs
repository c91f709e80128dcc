//! Registrations in a library crate: they reach the program only if the program
//! links this crate (`use init_demo as _;` is enough).

/// Read by the first request in `init-demo`.
#[coldstart::init]
pub static SHARED: String = {
    println!("init init_demo::SHARED");
    "shared".to_string()
};

/// Work the first request never needs.
#[coldstart::init(deferred)]
fn library_warm_up() {
    println!("init init_demo::library_warm_up");
}

/// What each init prints as it runs, and what `DEMO_FAIL` / `DEMO_PANIC` make it do.
/// `DEMO_TERM` names one that first sends its own process SIGTERM and waits 300 ms,
/// so that it ends while the program shuts down; `DEMO_WAIT_ON_RUNTIME` one that waits
/// on a timer of the runtime it runs inside, `DEMO_WAIT_MS` (300 by default; it must
/// be one that runs on a thread, not an `async fn`).
pub fn step(name: &str) -> Result<(), String> {
    println!("init {name}");
    let short = name.rsplit("::").next().unwrap_or(name);
    if std::env::var("DEMO_WAIT_ON_RUNTIME").is_ok_and(|v| v == short) {
        let ms = std::env::var("DEMO_WAIT_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(300);
        let wait = tokio::time::sleep(std::time::Duration::from_millis(ms));
        tokio::runtime::Handle::current().block_on(wait);
        println!("{short} waited on the runtime");
    }
    if std::env::var("DEMO_TERM").is_ok_and(|v| v == short) {
        // SAFETY: kill(2) of this process, with a signal coldstart handles.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    if std::env::var("DEMO_PANIC").is_ok_and(|v| v == short) {
        panic!("{short} exploded");
    }
    if std::env::var("DEMO_FAIL").is_ok_and(|v| v == short) {
        return Err(format!("{short}: no such file"));
    }
    Ok(())
}
