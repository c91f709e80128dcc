//! A final flush plans within the shutdown hooks' cap where that is shorter than its
//! own time: on Lambda without coldstart's extension the hooks are cut at 250 ms, and a
//! flush that planned for 400 ms was cut before it could count and say what it had
//! not sent. In a process of its own: the cap is process-wide.

use std::time::Duration;

#[test]
fn a_final_flush_plans_within_the_hooks_cap() {
    let ms = Duration::from_millis;
    assert_eq!(coldstart_exporters::final_flush_budget(ms(400)), ms(300));
    coldstart_runtime::lifecycle::cap_hook_deadlines(ms(250));
    // 250 ms, less a quarter of it kept to count and say what is left.
    assert_eq!(
        coldstart_exporters::final_flush_budget(ms(400)),
        ms(250) - ms(250) / 4
    );
    assert_eq!(coldstart_exporters::final_flush_budget(ms(80)), ms(60));
}
