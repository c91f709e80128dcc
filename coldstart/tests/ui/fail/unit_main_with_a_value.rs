#[coldstart::main]
async fn main() {
    Ok::<(), ()>(())
}
