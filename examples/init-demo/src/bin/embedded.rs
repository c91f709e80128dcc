//! Runs with the profile embedded at compile time (`embedded.profile`), which defers
//! the library's static; `COLDSTART_PROFILE` still overrides it.

use init_demo as _;

#[coldstart::main(profile = "embedded.profile")]
async fn main() {
    println!("body");
    coldstart::first_request_done();
    println!("first response");
    coldstart::deferred_done().await;
    println!("deferred done");
}
