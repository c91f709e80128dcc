//! What the bench programs share.

/// Prints the init phase (runtime built to body entered) in nanoseconds, as
/// `init_phase_ns=N`, for the `registry` driver.
pub fn print_init_phase(timeline: coldstart::Timeline) {
    let phase = timeline
        .since_main(coldstart::Phase::BodyEntered)
        .zip(timeline.since_main(coldstart::Phase::RuntimeBuilt));
    match phase {
        Some((body, runtime)) => {
            println!("init_phase_ns={}", body.saturating_sub(runtime).as_nanos())
        }
        None => println!("init_phase_ns=unknown"),
    }
}
