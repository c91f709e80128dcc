//! `coldstart::Builder` runs a body like `#[coldstart::main]`, with its settings in
//! the code layer. One test: the plan is global to the process.

use coldstart::Origin;

#[test]
fn settings_set_in_code_reach_the_plan() {
    let workers = coldstart::Builder::new()
        .set("COLDSTART_STRATEGY", "minimal")
        .flavor(coldstart::Flavor::CurrentThread)
        .block_on(async {
            let plan = coldstart::plan().expect("the builder plans");
            assert_eq!(plan.strategy.value, coldstart::Strategy::Minimal);
            assert_eq!(
                plan.strategy.reason.origin,
                Origin::Code("COLDSTART_STRATEGY")
            );
            assert_eq!(plan.flavor.reason.origin, Origin::Attribute("flavor"));
            plan.worker_threads.value
        });
    assert_eq!(workers, 1);
}
