// A value of the wrong kind is shown with what the argument takes.
mod a {
    #[coldstart::main(profile = 5)]
    async fn main() {}
}

mod b {
    #[coldstart::main(crate = coldstart)]
    async fn main() {}
}

#[coldstart::init(name = 5)]
fn setup() {}

fn main() {}
