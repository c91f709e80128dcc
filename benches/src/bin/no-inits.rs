//! No registrations: the init phase's fixed cost, to subtract from `many-inits`.

#[coldstart::main]
async fn main() {
    coldstart_benches::print_init_phase(coldstart::timeline());
}
