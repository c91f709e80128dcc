// `Self` in an item the body declares (an `impl`, a `struct`) is that item's own: the
// body is still a function of its own, so that a `return` in it is coerced to the
// return type as in `main_return_in_body.rs`, not an `async` block whose type the
// `return` would set (tokio#6930).

#[coldstart::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    struct Port(u16);
    impl Port {
        fn load() -> Self {
            Port(std::env::args().count() as u16)
        }
    }
    enum List {
        Empty,
        More(Box<Self>),
    }
    let list = List::More(Box::new(List::Empty));
    if Port::load().0 == 0 || matches!(list, List::Empty) {
        return Err(Box::new(std::io::Error::other("no port")));
    }
    Ok(())
}
