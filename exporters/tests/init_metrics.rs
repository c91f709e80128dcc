//! `coldstart_init_failed` and `coldstart_init_duration_seconds` on a scrape, for
//! registrations that ran: 1 for the one that failed, 0 for the one that did not. The
//! registrations are written out by hand here (the attribute lives in the facade,
//! which this crate cannot depend on). One test: the registry and telemetry are global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use coldstart_bootstrap::init::{Declared, INITS, Registration, Work, linkme};
use coldstart_bootstrap::{Env, Settings};
use coldstart_exporters::config::Config;

#[linkme::distributed_slice(INITS)]
#[linkme(crate = linkme)]
static WORKS: Registration = Registration::new(
    "init_metrics::works",
    Declared::Critical,
    false,
    // Long enough to be seen in the duration: 20 ms.
    Work::Fn(|| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        Ok(())
    }),
);

#[linkme::distributed_slice(INITS)]
#[linkme(crate = linkme)]
static FAILS: Registration = Registration::new(
    "init_metrics::fails",
    Declared::Deferred,
    false,
    Work::Fn(|| Err("no backend".to_owned())),
);

#[test]
fn a_scrape_shows_which_inits_failed_and_how_long_they_took() {
    let env = Env::fixed([
        ("COLDSTART_METRICS_ADDR", "off"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ]);
    let (config, errors) = Config::from(&env);
    assert!(errors.is_empty(), "{errors:?}");
    let telemetry = coldstart_exporters::install_with(config, None);
    let scrape = coldstart_runtime::block_on(&Settings::NONE, async move {
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        coldstart_runtime::init::deferred_done().await;
        coldstart_exporters::metrics::render()
    });
    for line in [
        "coldstart_init_failed{name=\"init_metrics::fails\"} 1",
        "coldstart_init_failed{name=\"init_metrics::works\"} 0",
    ] {
        assert!(
            scrape.lines().any(|l| l == line),
            "no `{line}` in:\n{scrape}"
        );
    }
    for (name, place, least) in [
        ("init_metrics::works", "before_serving", 0.02),
        ("init_metrics::fails", "after_first_response", 0.0),
    ] {
        let prefix =
            format!("coldstart_init_duration_seconds{{name=\"{name}\",place=\"{place}\"}} ");
        let seconds: f64 = scrape
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` with a number in:\n{scrape}"));
        // The time it took: the sleep's at least, and no more than a test can take.
        assert!((least..60.0).contains(&seconds), "{prefix}{seconds}");
    }
}
