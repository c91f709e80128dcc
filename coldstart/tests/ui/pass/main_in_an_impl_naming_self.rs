// A method named `main` whose body names the `impl`'s `Self` (in a closure too): the
// body stays where `Self` is seen, beside an item of its own that has its own `Self`.

struct Service;

impl Service {
    fn port() -> u16 {
        8080
    }

    #[coldstart::main(flavor = "current_thread")]
    async fn main() -> u16 {
        struct Local;
        impl Local {
            fn new() -> Self {
                Local
            }
        }
        let _ = Local::new();
        let port = || Self::port();
        port()
    }
}

// `Self` in the return type, where `impl` is a type, not an item: compiled, not run
// (one runtime a process).
struct Port(u16);

impl Port {
    #[allow(dead_code)]
    #[coldstart::main(flavor = "current_thread")]
    async fn main() -> impl Into<Self> {
        Port(8080)
    }
}

fn main() {
    assert_eq!(Service::main(), 8080);
    let _ = Port(0).0;
}
