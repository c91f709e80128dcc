#[coldstart::init]
fn takes_input(_n: u32) {}

#[coldstart::init]
static mut COUNTER: u32 = 0;

#[coldstart::init]
struct NotWork;

#[coldstart::init]
unsafe fn not_safe() {}

#[coldstart::init]
fn returns_a_number() -> u32 {
    1
}

fn main() {}
