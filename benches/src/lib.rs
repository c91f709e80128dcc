//! What the bench programs share.

use std::path::PathBuf;

/// A program built next to the running one (`target/release/NAME`).
///
/// # Errors
///
/// When it has not been built, saying how to build it.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist; build it first: cargo build --release -p http-server -p coldstart-benches --bins",
            path.display()
        );
    }
    Ok(path)
}

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
