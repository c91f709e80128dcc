//! Writes the 1000 empty registrations of the `many-inits` bench program: 500
//! functions, 250 async functions and 250 statics.

use std::fmt::Write;

fn main() {
    let mut code = String::new();
    for i in 0..1000 {
        let _ = match i % 4 {
            0 | 1 => writeln!(code, "#[coldstart::init] fn init_{i:04}() {{}}"),
            2 => writeln!(code, "#[coldstart::init] async fn init_{i:04}() {{}}"),
            _ => writeln!(code, "#[coldstart::init] static INIT_{i:04}: u64 = {i};"),
        };
    }
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    if let Err(e) = std::fs::write(std::path::Path::new(&out).join("many_inits.rs"), code) {
        panic!("cannot write the generated registrations: {e}");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
