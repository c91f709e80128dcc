#[coldstart::init]
#[coldstart::init(name = "app::warm")]
fn warm() {}

#[coldstart::init]
#[::coldstart::init]
static CONFIG: String = String::new();

fn main() {
    let _ = CONFIG.len();
}
