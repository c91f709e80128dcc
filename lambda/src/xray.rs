/*!
The X-Ray trace header Lambda gives each invocation (`Lambda-Runtime-Trace-Id`, also
set as `_X_AMZN_TRACE_ID`), read as a W3C trace id and span id so the invocation's
span can link to it.

`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`: the
root's two hex groups (8 and 24 digits) are the 128-bit trace id, `Parent` the 64-bit
span id. Anything else in the header is ignored; a header without a usable root and
parent yields nothing. Never panics on any input.
*/

/// A trace position taken from the X-Ray header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XrayContext {
    /// The 128-bit trace id.
    pub trace_id: u128,
    /// The parent segment's id.
    pub span_id: u64,
    /// `Sampled=1`.
    pub sampled: bool,
}

/// Reads the header.
///
/// ```
/// use coldstart_lambda::xray::parse;
/// let x = parse("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1").unwrap();
/// assert_eq!(format!("{:032x}", x.trace_id), "5759e988bd862e3fe1be46a994272793");
/// assert_eq!(format!("{:016x}", x.span_id), "53995c3f42cd8ad8");
/// assert!(x.sampled);
/// ```
pub fn parse(header: &str) -> Option<XrayContext> {
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", v)) => root = Some(v),
            Some(("Parent", v)) => parent = Some(v),
            Some(("Sampled", v)) => sampled = v == "1",
            _ => {}
        }
    }
    let mut groups = root?.split('-');
    let (version, time, random) = (groups.next()?, groups.next()?, groups.next()?);
    if version != "1" || time.len() != 8 || random.len() != 24 || groups.next().is_some() {
        return None;
    }
    let parent = parent?;
    if parent.len() != 16 {
        return None;
    }
    let trace_id = hex(time)? << 96 | hex(random)?;
    let span_id = u64::try_from(hex(parent)?).ok()?;
    (trace_id != 0 && span_id != 0).then_some(XrayContext {
        trace_id,
        span_id,
        sampled,
    })
}

fn hex(s: &str) -> Option<u128> {
    s.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_headers_yield_nothing() {
        for bad in [
            "",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e98-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=+3995c3f42cd8ad8",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793-x;Parent=53995c3f42cd8ad8",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn order_and_extra_fields_do_not_matter() {
        let x = parse("Sampled=0;Lineage=a:1;Parent=0000000000000001;Root=1-00000001-000000000000000000000002")
            .unwrap();
        assert_eq!(
            (x.trace_id, x.span_id, x.sampled),
            ((1u128 << 96) | 2, 1, false)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,120}") {
            let _ = parse(&s);
        }

        #[test]
        fn reads_back_what_it_is_given(t in 1u128.., s in 1u64..) {
            let header = format!("Root=1-{:08x}-{:024x};Parent={s:016x};Sampled=1", t >> 96, t & ((1u128 << 96) - 1));
            let x = parse(&header).unwrap();
            proptest::prop_assert_eq!((x.trace_id, x.span_id), (t, s));
        }
    }
}
