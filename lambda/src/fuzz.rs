/*!
Entry points for the fuzz targets in `fuzz/`: what this crate parses of the Lambda
environment and the Runtime and Extensions APIs, including the parts that are not
public API. Compiled only under `cfg(fuzzing)`, which `cargo fuzz` sets.
*/

/// A header value, a response head, an environment value, an event: each parser that
/// reads what Lambda hands the function.
pub fn lambda_text(text: &str) {
    // The event's shape, read before the handler runs (its first and last 4 KiB).
    #[cfg(feature = "tracing")]
    let _ = crate::span::trigger(text.as_bytes());
    // An HTTP event's request, and its attributes, however odd its values.
    #[cfg(feature = "tracing")]
    crate::http_event::read(text.as_bytes()).attributes(16, &mut Vec::new());
    // An answer's status: the top level of any JSON value.
    #[cfg(feature = "tracing")]
    if let Ok(answer) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(status) = crate::status::of(&answer)
    {
        assert!((100..=599).contains(&status), "{status} from {text:?}");
        assert_eq!(answer["statusCode"], status, "{text:?}");
    }
    if let Some(x) = crate::xray::parse(text) {
        // What was read is what the header carried: its `Root` and its `Parent`.
        let lower = text.to_ascii_lowercase();
        let root = format!(
            "1-{:08x}-{:024x}",
            x.trace_id >> 96,
            x.trace_id & ((1 << 96) - 1)
        );
        assert!(lower.contains(&root), "{root} from {text:?}");
        let parent = format!("{:016x}", x.span_id);
        assert!(lower.contains(&parent), "{text:?}");
    }
    if let Ok(api) = crate::RuntimeApi::parse(text) {
        // lambda_runtime panics on an address it cannot make a URI of.
        let url = api.url("/next");
        assert!(url.parse::<http::Uri>().is_ok(), "{url} from {text:?}");
    }
    let _ = crate::account_id(text);
    let _ = crate::ready::parse_schedstat(text);
    for name in ["content-length", "lambda-extension-identifier"] {
        if let Some(value) = crate::extension::header(text, name) {
            // The value of a line of that name, as the line gives it.
            let named = text.lines().any(|line| {
                line.split_once(':')
                    .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case(name) && v.trim() == value)
            });
            assert!(named, "{name}: {value:?} from {text:?}");
        }
    }
    // Every variable the function reads at once, set to the same text.
    let function = crate::Function::from_lookup(|_| Some(text.to_owned()));
    if let Ok(f) = function {
        let _ = f.resource_attributes();
    }
}
