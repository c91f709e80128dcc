// A `return` whose value does not match the return type: the error is on the
// `return`'s line, not on the attribute.

#[coldstart::main]
async fn main() {
    if std::env::args().count() > 5 {
        return 1;
    }
}
