// An attribute on a function of a generic `impl`, whose body names the `impl`'s type
// parameter: the body stays where it can see it (a function of its own nested in the
// body could not).

struct App<T>(T);

impl<T: Default + std::fmt::Debug> App<T> {
    #[coldstart::main(flavor = "current_thread")]
    async fn run() -> T {
        T::default()
    }
}

fn main() {
    assert_eq!(App::<u8>::run(), 0);
}
