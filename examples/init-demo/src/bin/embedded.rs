//! Runs with the profile embedded at compile time (`embedded.profile`), which defers
//! the library's static; `COLDSTART_PROFILE` still overrides it.

use init_demo as _;

#[coldstart::main(profile = "embedded.profile")]
async fn main() {
    println!("body");
    // Printed before the mark: deferred work may start on another thread the moment
    // the mark is made, and its lines must come after this one.
    println!("first response");
    coldstart::first_request_done();
    coldstart::deferred_done().await;
    println!("deferred done");
}
