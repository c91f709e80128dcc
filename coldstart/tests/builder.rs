//! `coldstart::Builder` runs a body like `#[coldstart::main]`, with its settings in
//! the code layer, and the init profile it is given. One test: the plan is global to
//! the process.

use std::sync::atomic::{AtomicBool, Ordering};

use coldstart::Origin;

static WARMED: AtomicBool = AtomicBool::new(false);

/// Before serving by default; after the first response by the profile below.
#[coldstart::init]
static WARM: u8 = {
    WARMED.store(true, Ordering::SeqCst);
    1
};

#[test]
fn settings_set_in_code_reach_the_plan() {
    let workers = coldstart::Builder::new()
        .set("COLDSTART_STRATEGY", "minimal")
        .flavor(coldstart::Flavor::CurrentThread)
        .init_profile("coldstart-profile 1\nlater 10 static builder::WARM\n")
        .name("built")
        .block_on(async {
            assert_eq!(tokio::runtime::Handle::current().name(), Some("built"));
            assert!(
                !WARMED.load(Ordering::SeqCst),
                "the profile places the init after the first response"
            );
            let plan = coldstart::plan().expect("the builder plans");
            assert_eq!(plan.strategy.value, coldstart::Strategy::Minimal);
            assert_eq!(
                plan.strategy.reason.origin,
                Origin::Code("COLDSTART_STRATEGY")
            );
            // Set by the builder's own method: the code layer too, not an attribute.
            assert_eq!(plan.flavor.reason.origin, Origin::Code("COLDSTART_FLAVOR"));
            // It does run, after the first response: not before serving, and not
            // left out.
            coldstart::first_request_done();
            coldstart::deferred_done().await;
            assert!(
                WARMED.load(Ordering::SeqCst),
                "the init ran after the first response"
            );
            plan.worker_threads.value
        });
    assert_eq!(workers, 1);
}
