//! The invocation's server span, following the OpenTelemetry FaaS conventions.
//!
//! Per span: `faas.trigger`, `faas.invocation_id`, `faas.coldstart`,
//! `cloud.resource_id` (the invoked ARN with an alias replaced by the version that
//! runs, as the conventions ask: one instance serves every alias of its version),
//! `aws.lambda.invoked_arn` (the ARN as invoked, its alias kept) and
//! `cloud.account.id`, and a link to the X-Ray trace from `Lambda-Runtime-Trace-Id`.
//! An HTTP event's `traceparent` (read by the installed propagator, from the headers
//! it names: a program's own B3 or X-Ray propagator reads its own) makes the
//! caller's span its parent, and its request and answer give the span the HTTP server
//! conventions' attributes (`http.request.method`, `http.route`, `url.path`,
//! `http.response.status_code` and the others [`http_event`] lists); a 5xx answer is
//! an error, as in the HTTP layer. Per process, on the resource: `cloud.provider`,
//! `cloud.platform`, `cloud.region`, `faas.name`, `faas.version`, `faas.instance`,
//! `faas.max_memory` (see [`Function::resource_attributes`]).

use lambda_runtime::LambdaInvocation;
use lambda_runtime_api_client::BoxError;
use opentelemetry::trace::{
    Link, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};

use crate::function::{Function, account_id};
use crate::{http_event, xray};

/// Starts the span; an empty context when tracing is off. Its attributes and link are
/// worked out only when the span records something that is kept.
pub(crate) fn start(function: &Function, invocation: &LambdaInvocation, cold: bool) -> Context {
    let Some(tracer) = coldstart_exporters::trace::tracer() else {
        return Context::new();
    };
    let trigger = trigger(&invocation.body);
    let http = trigger == "http";
    let request = match http {
        true => http_event::read(&invocation.body),
        false => http_event::Request::default(),
    };
    // Named after the function, or after an HTTP event's route where it has one, as
    // the conventions' API Gateway section asks (its `resource`, `/items/{id}`), cut
    // as its attribute is.
    let name = match request.route() {
        Some(route) => {
            coldstart_exporters::http::kept(route, tracer.request_value_chars()).to_owned()
        }
        None => function.name.clone(),
    };
    let builder = tracer.span_builder(name).with_kind(SpanKind::Server);
    let span = tracer.start_described(builder, &request.parent, |builder| {
        describe(builder, invocation, trigger, cold, &function.version);
        if let (true, Some(attributes)) = (http, builder.attributes.as_mut()) {
            request.attributes(tracer.request_value_chars(), attributes);
        }
    });
    crate::handler::answers_http(http);
    request.parent.with_span(span)
}

/// The FaaS attributes and the X-Ray link of `invocation`'s span.
fn describe(
    builder: &mut SpanBuilder,
    invocation: &LambdaInvocation,
    trigger: &'static str,
    cold: bool,
    version: &str,
) {
    let context = &invocation.context;
    let arn = context.invoked_function_arn.as_str();
    let mut attributes = vec![
        KeyValue::new("faas.trigger", trigger),
        KeyValue::new("faas.invocation_id", context.request_id.clone()),
        KeyValue::new("faas.coldstart", cold),
    ];
    if arn.starts_with("arn:") {
        attributes.push(KeyValue::new(
            "cloud.resource_id",
            resource_id(arn, version),
        ));
        // The ARN as invoked, with the alias it named (`:live`), which the resource id
        // replaces with the version that ran.
        attributes.push(KeyValue::new("aws.lambda.invoked_arn", arn.to_owned()));
    }
    if let Some(account) = account_id(arn) {
        attributes.push(KeyValue::new("cloud.account.id", account.to_owned()));
    }
    builder.attributes = Some(attributes);
    // The invocation's own header only: `_X_AMZN_TRACE_ID` is lambda_runtime's copy
    // of it (set, or removed, for each invocation; never set when invocations run
    // concurrently), so where the header is missing it is missing or another's.
    if let Some(x) = context.xray_trace_id.as_deref().and_then(xray::parse) {
        let flags = if x.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let linked = SpanContext::new(
            TraceId::from_bytes(x.trace_id.to_be_bytes()),
            SpanId::from_bytes(x.span_id.to_be_bytes()),
            flags,
            true,
            TraceState::default(),
        );
        builder.links = Some(vec![Link::with_context(linked)]);
    }
}

/// The `error.type` of an event that did not deserialise into the handler's type: the
/// error type lambda_runtime tells the Runtime API then (with a leading `&`).
const NOT_DESERIALISED: &str = "lambda_runtime::deserializer::DeserializeError";

/// The `error.type` of an invocation whose handler succeeded and whose response could
/// not be posted to the Runtime API: its caller got no answer. Only a post that fails
/// (the connection) is seen: lambda_runtime 1.5 turns an answer the API refuses with a
/// status (413 for a response over 6 MB) into success.
const NOT_POSTED: &str = "response_not_posted";

/// The `error.type` of an invocation whose handler succeeded with a response that does
/// not serialise to JSON (a map with keys that are not strings): lambda_runtime fails
/// before posting anything, with the same error a failed post gives, and `run` ends.
const NOT_SERIALISED: &str = "response_not_serialized";

/// The `error.type` and the message of a response (or a handler's error) that did not
/// reach the Runtime API, from lambda_runtime's error.
fn why_not_posted(e: &BoxError) -> (&'static str, String) {
    if e.downcast_ref::<serde_json::Error>().is_some() {
        let message = format!("the response could not be serialised to JSON: {e}");
        return (NOT_SERIALISED, message);
    }
    let message = format!("the response could not be posted to the Runtime API: {e}");
    (NOT_POSTED, message)
}

/// Ends the span. `not_posted`: why the response (or the handler's error) could not be
/// posted to the Runtime API, if it could not.
///
/// An invocation that failed already (the handler's error or panic, an event that did
/// not deserialise) keeps that as its status and `error.type`: it is why the
/// invocation failed. The failed post is then an event on the span.
pub(crate) fn end(cx: &Context, not_posted: Option<&BoxError>, not_called: bool) {
    let span = cx.span();
    if not_called {
        span.set_attribute(KeyValue::new("error.type", NOT_DESERIALISED));
        span.set_status(Status::error(
            "the event did not deserialise into the handler's type; lambda_runtime reported it",
        ));
    }
    if let Some(e) = not_posted {
        let (error_type, message) = why_not_posted(e);
        if crate::handler::failed() {
            span.add_event(message, Vec::new());
        } else {
            span.set_attribute(KeyValue::new("error.type", error_type));
            span.set_status(Status::error(message));
        }
    }
    span.end();
}

/// Ends the span of an invocation still running [`TIMEOUT_NOTICE`] before its
/// deadline: an error whose `error.type` is `timeout`.
///
/// [`TIMEOUT_NOTICE`]: crate::layer::future::TIMEOUT_NOTICE
pub(crate) fn end_timed_out(cx: &Context) {
    let span = cx.span();
    span.set_attribute(KeyValue::new("error.type", "timeout"));
    span.set_status(Status::error(format!(
        "still running {} ms before the invocation's deadline: Lambda stops it as timed out",
        crate::layer::future::TIMEOUT_NOTICE.as_millis()
    )));
    span.end();
}

/// The function's ARN for `cloud.resource_id`: the invoked ARN with its qualifier (an
/// alias, or a version) replaced by the version that runs; unqualified, as it came.
fn resource_id(invoked: &str, version: &str) -> String {
    // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    let parts: Vec<&str> = invoked.split(':').collect();
    match parts.as_slice() {
        [head @ .., _qualifier] if parts.len() == 8 && !version.is_empty() => {
            format!("{}:{version}", head.join(":"))
        }
        _ => invoked.to_owned(),
    }
}

/// `faas.trigger` from the event's shape: `http` (API Gateway, function URLs, ALB),
/// `pubsub` (SQS, SNS, Kinesis), `datasource` (S3, DynamoDB), `timer` (EventBridge
/// schedules), else `other`. Looks at the first and the last 4 KiB only (an event
/// can be 6 MB, and this runs before the handler): the marks are near the start
/// (`routeKey`, `httpMethod`, S3's, DynamoDB's and SNS's event source), or, for SQS
/// and Kinesis, whose event source follows each record's data, at the end of the
/// last record. An event source counts only as the value of its own key
/// (`eventSource`, `EventSource`, `source`), and a record source only in the
/// `{"Records":[...]}` envelope, so nothing a caller puts in an HTTP event names one.
pub(crate) fn trigger(body: &[u8]) -> &'static str {
    const SPAN: usize = 4096;
    let head = &body[..body.len().min(SPAN)];
    // An event of one span or less is all head: its tail is not looked at again.
    let tail = match body.len() > SPAN {
        true => &body[body.len() - SPAN..],
        false => &[],
    };
    let within =
        |part: &[u8], needle: &str| part.windows(needle.len()).any(|w| w == needle.as_bytes());
    let has = |needle: &str| within(head, needle) || within(tail, needle);
    // `"value"` as the value of one of `keys` (`"key":"value"`, spaces allowed).
    let keyed = |keys: &[&str], value: &str| {
        [head, tail]
            .into_iter()
            .any(|part| valued(part, value).any(|key| keys.contains(&key)))
    };
    // The record sources only in their envelope, `{"Records":[...]}`, which no HTTP
    // event has: a caller's query parameter or header valued `aws:sqs` is a plain
    // string of an HTTP event, and made it `pubsub`, its `traceparent` unread. Each
    // by its own key, so a value in a record's data (a DynamoDB item's) names none.
    let records = head
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(head)
        .trim_ascii_start()
        .strip_prefix(b"{")
        .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"Records\""));
    let source = |value: &str| keyed(&["eventSource", "EventSource"], value);
    // A REST API's event begins `resource`, `path`, then `httpMethod`, which a path
    // of over 4 KiB puts past the head (and a large body past the tail).
    let rest_api = || top_level_key(head, "resource") && top_level_key(head, "path");
    // A Bedrock agent's action group call: its `actionGroup`, or, where a long
    // `inputText` puts that past the head, the `messageVersion` and `agent` before it.
    let bedrock_agent = || {
        top_level_key(head, "actionGroup")
            || top_level_key(head, "messageVersion") && top_level_key(head, "agent")
    };
    // Kafka and Amazon MQ batches name their source at the top, beside lower-case
    // `records` or `messages`, not in `Records`. Their data is base64, so an HTTP key
    // in one is no HTTP event's: the HTTP test comes first, and a caller's header or
    // parameter named `eventSource` cannot make an HTTP event one of these.
    let broker = [
        "\"aws:kafka\"",
        "\"SelfManagedKafka\"",
        "\"aws:mq\"",
        "\"aws:rmq\"",
    ];
    if records && (source("\"aws:sqs\"") || source("\"aws:sns\"") || source("\"aws:kinesis\"")) {
        "pubsub"
    } else if records && (source("\"aws:s3\"") || source("\"aws:dynamodb\"")) {
        "datasource"
    } else if !records
        && (has("\"httpMethod\"") || has("\"routeKey\"") || has("\"rawPath\"") || rest_api())
        && !top_level_key(head, "detail-type")
        && !bedrock_agent()
    {
        // By the keys only HTTP events have (API Gateway's REST, HTTP and WebSocket
        // APIs, function URLs, load balancers), not `requestContext`, which an
        // asynchronous invocation's destination record has too. Not a Bedrock agent's
        // action group call (its `actionGroup`), which has an `httpMethod` and an
        // `apiPath` but is no HTTP request. Not in an EventBridge
        // event (its own `detail-type` near the start, not a caller's header or
        // parameter of that name), whose detail may hold them: a CloudTrail record of
        // an API Gateway call has an `httpMethod`.
        // Before the schedules: a scheduled event has none of these, and an HTTP
        // event may carry `aws.events` in a parameter.
        "http"
    } else if !records && broker.into_iter().any(source) {
        "pubsub"
    } else if keyed(&["source"], "\"aws.events\"") || keyed(&["source"], "\"aws.scheduler\"") {
        "timer"
    } else {
        "other"
    }
}

/// Whether `key` is a key of the outermost object in `head` (the start of a JSON
/// event), not of one nested in it: strings (their escapes too) and nesting are
/// followed from the start.
fn top_level_key(head: &[u8], key: &str) -> bool {
    let (mut depth, mut at) = (0usize, 0);
    while at < head.len() {
        match head[at] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = at + 1;
                let mut end = start;
                while end < head.len() && head[end] != b'"' {
                    end += if head[end] == b'\\' { 2 } else { 1 };
                }
                let rest = head.get(end + 1..).unwrap_or_default().trim_ascii_start();
                if depth == 1
                    && head.get(start..end) == Some(key.as_bytes())
                    && rest.starts_with(b":")
                {
                    return true;
                }
                at = end;
            }
            _ => {}
        }
        at += 1;
    }
    false
}

/// The keys whose value is `value` (a quoted string) in `part`: for each place it is
/// found, the string before it and a colon, if that is what precedes it.
fn valued<'a>(part: &'a [u8], value: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let value = value.as_bytes();
    (0..part.len().saturating_sub(value.len()) + 1)
        .filter(move |&i| part[i..].starts_with(value))
        .filter_map(move |i| {
            let before = part[..i].trim_ascii_end().strip_suffix(b":")?;
            let key = before.trim_ascii_end().strip_suffix(b"\"")?;
            let open = key.iter().rposition(|&b| b == b'"')?;
            std::str::from_utf8(&key[open + 1..]).ok()
        })
}

#[cfg(test)]
mod tests {
    use super::{BoxError, resource_id, trigger, why_not_posted};

    /// lambda_runtime serialises the response before posting it, and gives a failure
    /// to do so as it gives a failed post.
    #[test]
    fn a_response_that_does_not_serialise_is_not_called_unposted() {
        let mut keys = std::collections::HashMap::new();
        keys.insert((1, 2), 3);
        let serde: BoxError = serde_json::to_vec(&keys).unwrap_err().into();
        let (error_type, message) = why_not_posted(&serde);
        assert_eq!(error_type, "response_not_serialized");
        assert_eq!(
            message,
            "the response could not be serialised to JSON: key must be a string"
        );
        let closed: BoxError = std::io::Error::from(std::io::ErrorKind::ConnectionReset).into();
        let (error_type, message) = why_not_posted(&closed);
        assert_eq!(error_type, "response_not_posted");
        assert!(
            message.starts_with("the response could not be posted"),
            "{message}"
        );
    }

    /// The span names the ARN as invoked (its alias kept) beside the resource id (the
    /// version that ran), as the conventions' `aws.lambda.invoked_arn` asks.
    #[test]
    fn the_invoked_arn_is_kept_beside_the_resource_id() {
        use opentelemetry::{Key, Value};
        let base = "arn:aws:lambda:eu-west-1:123456789012:function:hello";
        let mut context = lambda_runtime::Context::default();
        context.invoked_function_arn = format!("{base}:live");
        let invocation = lambda_runtime::LambdaInvocation {
            parts: http::Response::new(()).into_parts().0,
            body: bytes::Bytes::new(),
            context,
        };
        let mut builder = opentelemetry::trace::SpanBuilder::from_name("hello");
        super::describe(&mut builder, &invocation, "other", false, "7");
        let attributes = builder.attributes.unwrap();
        let value = |key: &str| {
            let key = Key::from(key.to_owned());
            attributes
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(
            value("aws.lambda.invoked_arn"),
            Some(Value::from(format!("{base}:live")))
        );
        assert_eq!(
            value("cloud.resource_id"),
            Some(Value::from(format!("{base}:7")))
        );
    }

    #[test]
    fn an_alias_in_the_resource_id_is_the_version_that_runs() {
        let base = "arn:aws:lambda:eu-west-1:123456789012:function:hello";
        assert_eq!(
            resource_id(&format!("{base}:live"), "7"),
            format!("{base}:7")
        );
        assert_eq!(resource_id(&format!("{base}:7"), "7"), format!("{base}:7"));
        assert_eq!(resource_id(base, "7"), base);
    }

    #[test]
    fn triggers_from_event_shapes() {
        assert_eq!(
            trigger(br#"{"version":"2.0","routeKey":"$default","requestContext":{"http":{}}}"#),
            "http"
        );
        assert_eq!(
            trigger(br#"{"requestContext":{"elb":{}},"httpMethod":"GET","path":"/"}"#),
            "http"
        );
        // An asynchronous invocation's record, sent on to a destination function.
        assert_eq!(
            trigger(
                br#"{"version":"1.0","requestContext":{"requestId":"r","condition":"Success"},"requestPayload":{"a":1}}"#
            ),
            "other"
        );
        for broker in [
            r#"{"eventSource":"aws:kafka","records":{"t-0":[]}}"#,
            r#"{"eventSource":"SelfManagedKafka","records":{}}"#,
            r#"{"eventSource":"aws:mq","messages":[]}"#,
            r#"{"eventSource":"aws:rmq","rmqMessagesByQueue":{}}"#,
        ] {
            assert_eq!(trigger(broker.as_bytes()), "pubsub", "{broker}");
        }
        assert_eq!(
            trigger(br#"{"Records":[{"eventSource":"aws:sqs"}]}"#),
            "pubsub"
        );
        assert_eq!(
            trigger(br#"{"Records":[{"eventSource":"aws:s3"}]}"#),
            "datasource"
        );
        assert_eq!(
            trigger(br#"{"source":"aws.events","detail-type":"Scheduled Event"}"#),
            "timer"
        );
        assert_eq!(trigger(br#"{"hello":"world"}"#), "other");
        // CloudTrail's record of an API Gateway call, through EventBridge.
        assert_eq!(
            trigger(
                br#"{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.apigateway","detail":{"eventName":"PutMethod","requestParameters":{"httpMethod":"GET"}}}"#
            ),
            "other"
        );
        // The marks behind large fields: an SQS message body of 64 KiB, and an HTTP
        // API request whose headers and cookies take 8 KiB before its request context.
        let big = "x".repeat(64 << 10);
        let sqs = format!(
            r#"{{"Records":[{{"messageId":"1","body":"{big}","eventSource":"aws:sqs","awsRegion":"eu-west-1"}}]}}"#
        );
        assert_eq!(trigger(sqs.as_bytes()), "pubsub");
        let cookies = "c=1; ".repeat(1600);
        let http = format!(
            r#"{{"version":"2.0","routeKey":"$default","cookies":["{cookies}"],"requestContext":{{"http":{{}}}},"body":"{big}"}}"#
        );
        assert_eq!(trigger(http.as_bytes()), "http");
        // An SQS message with an attribute named like an HTTP key, and an HTTP
        // request whose body names an event source.
        let sqs = r#"{"Records":[{"body":"x","messageAttributes":{"routeKey":{"stringValue":"a"}},"eventSource":"aws:sqs"}]}"#;
        assert_eq!(trigger(sqs.as_bytes()), "pubsub");
        let http =
            r#"{"routeKey":"$default","requestContext":{},"body":"{\"eventSource\":\"aws:sqs\"}"}"#;
        assert_eq!(trigger(http.as_bytes()), "http");
        assert_eq!(trigger(b""), "other");
        // A Bedrock agent's action group call names an HTTP method, and is no HTTP
        // request; a REST API request whose path and body are long still is one.
        let bedrock = r#"{"messageVersion":"1.0","agent":{"name":"a"},"inputText":"hi","sessionId":"s","actionGroup":"g","apiPath":"/items","httpMethod":"GET","parameters":[]}"#;
        assert_eq!(trigger(bedrock.as_bytes()), "other");
        let prompt = "p".repeat(5 << 10);
        let bedrock = format!(
            r#"{{"messageVersion":"1.0","agent":{{"name":"a"}},"inputText":"{prompt}","sessionId":"s","actionGroup":"g","apiPath":"/items","httpMethod":"GET","parameters":[]}}"#
        );
        assert_eq!(trigger(bedrock.as_bytes()), "other", "a long prompt");
        let long = "/p".repeat(4 << 10);
        let rest = format!(
            r#"{{"resource":"/{{proxy+}}","path":"{long}","httpMethod":"GET","headers":{{}},"requestContext":{{}},"body":"{big}"}}"#
        );
        assert_eq!(trigger(rest.as_bytes()), "http");
        // A caller's parameter, header or path valued like an event source is a string
        // of an HTTP event; a DynamoDB item's value names no source either.
        for spoof in ["aws:sqs", "aws:sns", "aws:s3", "aws.events"] {
            let http = format!(
                r#"{{"resource":"/orders","path":"/orders","httpMethod":"GET","headers":{{"x-origin":"{spoof}"}},"queryStringParameters":{{"src":"{spoof}"}},"requestContext":{{}}}}"#
            );
            assert_eq!(trigger(http.as_bytes()), "http", "{spoof}");
        }
        // A caller's header and parameter named like EventBridge's own key, and a
        // body (a string) that holds it.
        let http = r#"{"version":"2.0","routeKey":"$default","headers":{"detail-type":"x"},"queryStringParameters":{"detail-type":"y"},"body":"{\"detail-type\":1}","requestContext":{}}"#;
        assert_eq!(trigger(http.as_bytes()), "http");
        // A caller's header or parameter named like the brokers' own key.
        for spoof in ["aws:kafka", "aws:mq"] {
            let http = format!(
                r#"{{"httpMethod":"GET","headers":{{"EventSource":"{spoof}"}},"queryStringParameters":{{"eventSource":"{spoof}"}}}}"#
            );
            assert_eq!(trigger(http.as_bytes()), "http", "{spoof}");
        }
        let dynamodb = r#"{"Records":[{"dynamodb":{"NewImage":{"via":{"S":"aws:sqs"}}},"eventSource":"aws:dynamodb"}]}"#;
        assert_eq!(trigger(dynamodb.as_bytes()), "datasource");
        // As test fixtures write them: spaces, and SNS's capitalised key.
        let sns = "{\n  \"Records\": [\n    {\n      \"EventSource\": \"aws:sns\"\n    }\n  ]\n}";
        assert_eq!(trigger(sns.as_bytes()), "pubsub");
        // A file saved with a byte-order mark, as `profile --lambda-event` sends it.
        let bom = format!("\u{FEFF}{sns}");
        assert_eq!(trigger(bom.as_bytes()), "pubsub");
    }
}
