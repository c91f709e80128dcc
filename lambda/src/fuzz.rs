/*!
Entry points for the fuzz targets in `fuzz/`: what this crate parses of the Lambda
environment and the Runtime and Extensions APIs, including the parts that are not
public API. Compiled only under `cfg(fuzzing)`, which `cargo fuzz` sets.
*/

/// A header value, a response head, an environment value: each parser that reads
/// what Lambda hands the function.
pub fn lambda_text(text: &str) {
    if let Some(x) = crate::xray::parse(text) {
        assert!(x.trace_id != 0 && x.span_id != 0);
        // What was read is what the header carried.
        let parent = format!("{:016x}", x.span_id);
        assert!(text.to_ascii_lowercase().contains(&parent), "{text:?}");
    }
    if let Ok(api) = crate::RuntimeApi::parse(text) {
        let url = api.url("/next");
        assert!(
            url.starts_with("http://") && url.ends_with("/next"),
            "{url}"
        );
    }
    let _ = crate::account_id(text);
    let _ = crate::ready::parse_schedstat(text);
    for name in ["content-length", "lambda-extension-identifier"] {
        if let Some(value) = crate::extension::header(text, name) {
            assert!(text.contains(value));
        }
    }
    // Every variable the function reads at once, set to the same text.
    let function = crate::Function::from_lookup(|_| Some(text.to_owned()));
    if let Ok(f) = function {
        let _ = f.resource_attributes();
    }
}
