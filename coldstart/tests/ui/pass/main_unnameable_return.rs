// A function under the attribute may return what a closure parameter cannot name:
// `impl Trait` here (its output is then not described for Lambda's init error).
#[coldstart::main]
async fn answer() -> impl std::fmt::Debug {
    42
}

fn main() {
    println!("{:?}", answer());
}
