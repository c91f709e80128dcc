mod reexport {
    pub use coldstart as cs;
}

#[coldstart::main(crate = "reexport::cs")]
async fn main() {}
