//! Never names the library: the linker drops it, and its registrations with it.

#[coldstart::main]
async fn main() {
    for r in coldstart::inits() {
        println!("registered {}", r.name);
    }
    println!("{} registrations", coldstart::inits().len());
}
