// The attribute written by a `macro_rules!` macro, around a body the caller gives:
// as with tokio, the expansion's own names do not depend on where the body came from.
macro_rules! entry {
    ($name:ident $body:block) => {
        #[coldstart::main]
        async fn $name() $body
    };
}

entry!(main {
    let answer = async { 42 }.await;
    assert_eq!(answer, 42);
});
