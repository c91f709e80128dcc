// A `return` in the body is checked against the function's return type and coerced
// to it, as in any `async fn`: a `Box<MyError>` becomes a `Box<dyn Error>`, where the
// body as an `async` block would take its type from the `return` and fail on the
// attribute (tokio#6930).

#[derive(Debug)]
struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

impl std::error::Error for MyError {}

fn failing() -> bool {
    std::env::var_os("COLDSTART_UI_FAIL").is_some()
}

#[coldstart::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if failing() {
        return Err(Box::new(MyError));
    }
    if std::env::args().count() < 10 {
        return Ok(());
    }
    Err("too many arguments".into())
}
