fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    s.parse()
}

#[coldstart::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = parse("42")?;
    if n != 42 {
        return Err("wrong".into());
    }
    Ok(())
}
