//! Names the library only to link it: its registrations run.

use init_demo as _;

#[coldstart::main]
async fn main() {
    coldstart::first_request_done();
    coldstart::deferred_done().await;
    for r in coldstart::inits() {
        println!("registered {}", r.name);
    }
}
