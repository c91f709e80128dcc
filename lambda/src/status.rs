//! The HTTP status of an HTTP event's answer, for the invocation span's
//! `http.response.status_code`: the `statusCode` API Gateway, function URLs and load
//! balancers read from the handler's answer (`aws_lambda_events`' responses, a
//! `serde_json::Value`, a type of the program's own), or a streamed answer's prelude.
//!
//! The answer is not serialised to find it: a serializer that sees only the top
//! level of the answer is run over it, and serialises the value named `statusCode`
//! (and, of a map, its keys, a few bytes each). An answer with no whole-number
//! `statusCode` from 100 to 599 at its top level gives none (API Gateway then answers
//! 200 or 502 by rules of its own, which are not guessed at here); nor does one
//! already serialised (`serde_json::value::RawValue`, a string).

use std::fmt;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Status, TraceContextExt};
use serde::Serialize;
use serde::ser::{self, Impossible, SerializeMap, SerializeStruct, Serializer};

/// The key whose value is the status.
const KEY: &str = "statusCode";

/// The status `answer` gives at its top level, if any.
pub(crate) fn of<T: Serialize + ?Sized>(answer: &T) -> Option<u16> {
    answer.serialize(TopLevel).ok().flatten()
}

/// Whether the current span (the invocation's) records.
pub(crate) fn recording() -> bool {
    opentelemetry::Context::current().span().is_recording()
}

/// Puts `status` on the current span (the invocation's) where it records: as
/// `http.response.status_code`, and a 5xx as an error whose `error.type` is the code,
/// as the HTTP layer marks a server's failure (a 4xx is the caller's).
pub(crate) fn record(status: u16) {
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    if status >= 500 {
        span.set_attribute(KeyValue::new("error.type", status.to_string()));
        span.set_status(Status::error(format!("answered HTTP {status}")));
    }
}

/// Why no status was found; never shown.
#[derive(Debug)]
struct NotFound;

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no statusCode at the top level")
    }
}

impl std::error::Error for NotFound {}

impl ser::Error for NotFound {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotFound
    }
}

/// The status from a value given for [`KEY`]: a whole number from 100 to 599.
fn status(value: &(impl Serialize + ?Sized)) -> Option<u16> {
    let number = serde_json::to_value(value).ok()?.as_u64()?;
    u16::try_from(number)
        .ok()
        .filter(|s| (100..=599).contains(s))
}

/// Serializes the answer's top level: a struct or a map, looking for [`KEY`]; a value
/// wrapped in `Some` or a newtype is looked through. Anything else has no status.
struct TopLevel;

/// Defines the methods of [`TopLevel`] that find no status.
macro_rules! none_in {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Self::Error> {
            Ok(None)
        })*
    };
}

impl Serializer for TopLevel {
    type Ok = Option<u16>;
    type Error = NotFound;
    type SerializeSeq = Impossible<Option<u16>, NotFound>;
    type SerializeTuple = Impossible<Option<u16>, NotFound>;
    type SerializeTupleStruct = Impossible<Option<u16>, NotFound>;
    type SerializeTupleVariant = Impossible<Option<u16>, NotFound>;
    type SerializeMap = Fields;
    type SerializeStruct = Fields;
    type SerializeStructVariant = Impossible<Option<u16>, NotFound>;

    none_in!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Self::Ok, Self::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Self::Ok, Self::Error> {
        value.serialize(self)
    }

    // `{"Variant": {...}}`: the status would not be at the top level.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, Self::Error> {
        Ok(None)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(NotFound)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(NotFound)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(NotFound)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(NotFound)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Ok(Fields::default())
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Ok(Fields::default())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(NotFound)
    }
}

/// The fields of the top level: only [`KEY`]'s value is serialised.
#[derive(Default)]
struct Fields {
    found: Option<u16>,
    /// The map key just given was [`KEY`].
    next_is_status: bool,
}

impl SerializeStruct for Fields {
    type Ok = Option<u16>;
    type Error = NotFound;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        if key == KEY && self.found.is_none() {
            self.found = status(value);
        }
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, Self::Error> {
        Ok(self.found)
    }
}

impl SerializeMap for Fields {
    type Ok = Option<u16>;
    type Error = NotFound;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Self::Error> {
        // A map's keys are strings (JSON's are); the key is serialised to compare it,
        // a few bytes each.
        self.next_is_status = self.found.is_none()
            && serde_json::to_value(key).is_ok_and(|k| k.as_str() == Some(KEY));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        if std::mem::take(&mut self.next_is_status) {
            self.found = status(value);
        }
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, Self::Error> {
        Ok(self.found)
    }
}

#[cfg(test)]
mod tests {
    use super::of;
    use serde::Serialize;
    use serde_json::json;

    /// As `aws_lambda_events` writes its responses: a struct, `statusCode` renamed.
    #[derive(Serialize)]
    struct ProxyResponse {
        #[serde(rename = "statusCode")]
        status_code: i64,
        headers: std::collections::HashMap<String, String>,
        body: Option<String>,
    }

    /// The response enum of `lambda_http`: untagged, each variant a response.
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Answer {
        Proxy(ProxyResponse),
    }

    #[derive(Serialize)]
    struct Wrapped(ProxyResponse);

    #[test]
    fn the_status_is_read_from_the_top_level_of_structs_and_maps() {
        let proxy = || ProxyResponse {
            status_code: 503,
            headers: [("a".to_owned(), "b".to_owned())].into(),
            body: Some("x".repeat(1000)),
        };
        assert_eq!(of(&proxy()), Some(503));
        assert_eq!(of(&Answer::Proxy(proxy())), Some(503));
        assert_eq!(of(&Wrapped(proxy())), Some(503));
        assert_eq!(of(&Some(proxy())), Some(503));
        assert_eq!(of(&json!({"body": "{}", "statusCode": 201})), Some(201));
        // Nowhere else: nested, absent, or no answer an HTTP status can be.
        assert_eq!(of(&json!({"inner": {"statusCode": 201}})), None);
        assert_eq!(of(&json!({"greeting": "hello"})), None);
        assert_eq!(of(&json!([{"statusCode": 201}])), None);
        assert_eq!(of(&json!("statusCode")), None);
        assert_eq!(of(&json!({"statusCode": "201"})), None);
        assert_eq!(of(&json!({"statusCode": 99})), None);
        assert_eq!(of(&json!({"statusCode": 600})), None);
        assert_eq!(of(&json!({"statusCode": -1})), None);
        assert_eq!(of(&json!({"statusCode": 200.5})), None);
        assert_eq!(of(&()), None);
    }
}
