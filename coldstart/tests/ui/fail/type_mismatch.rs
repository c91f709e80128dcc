// A body whose value does not match the return type: the error is on the body's
// lines, as `#[tokio::main]` puts it, not on the attribute. (Test functions are not
// compiled outside `cargo test`, so only `main` can be shown here; the expansion is
// the same.)

#[coldstart::main]
async fn main() -> Result<(), ()> {
    println!("no value");
}

#[coldstart::main]
async fn extra_semicolon() -> Result<(), ()> {
    Ok(());
}
