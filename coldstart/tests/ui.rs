//! Compile-time behaviour of `#[coldstart::main]` and `#[coldstart::test]`: what must
//! compile (and run), and the spanned errors for wrong use.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
    // Fails only where `test-util` is off, as in tokio.
    #[cfg(not(feature = "test-util"))]
    t.compile_fail("tests/ui/needs_test_util/*.rs");
}
