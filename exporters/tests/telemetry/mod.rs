//! What the exporters' telemetry tests share: telemetry installed from variables, and
//! a wait for what the export task hands on.

#![allow(dead_code)] // each test uses its own part

use std::time::{Duration, Instant};

use coldstart_bootstrap::Env;
use coldstart_exporters::Telemetry;
use coldstart_exporters::config::Config;

/// Telemetry installed from `vars`, each of which must be accepted.
pub(crate) fn installed(vars: Vec<(&str, String)>) -> Telemetry {
    let (config, errors) = Config::from(&Env::fixed(vars));
    assert!(errors.is_empty(), "{errors:?}");
    coldstart_exporters::install_with(config, None)
}

/// Waits until `done`, for 15 s at most; the test's assertions then say what came.
pub(crate) async fn until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
