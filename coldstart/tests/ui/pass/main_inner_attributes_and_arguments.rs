//! What `#[tokio::main]` takes: inner attributes in the body, and arguments on a
//! function that is not `main`.

#[coldstart::main]
async fn serve(port: u16, name: &'static str) -> String {
    format!("{name}:{port}")
}

#[coldstart::main]
async fn main() {
    #![allow(unused_variables)]
    let unused = 1;
    // One runtime per process here: named, not called.
    let _: fn(u16, &'static str) -> String = serve;
}
