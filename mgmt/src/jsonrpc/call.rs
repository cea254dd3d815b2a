//! One JSON-RPC call, parsed once into its typed parts, and the canonical request text built from
//! those parts: what is authorised and what is executed come from the same parse.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A request object as the JSON-RPC 2.0 spec defines it: these four members and no others.
///
/// Unknown members are refused rather than ignored, and serde's derive refuses a member given
/// twice (e.g. two `"method"` keys, however their names are escaped), so no other reader of the
/// same text can pick a different method than the one authorised.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    /// `None` only when absent (a notification); `"id": null` is `Some("null")`.
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    /// Kept as unparsed text: the method parses its own parameters.
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// Deserialize a member that is there, even as `null`, to `Some`.
fn present<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<&'a RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Only the `id` of something that is not a valid call, to echo it in the error answer.
#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
}

/// A well-formed call.
#[derive(Debug)]
pub(super) struct Call<'a> {
    /// The method, unescaped: the name authorisation decides on.
    pub(super) method: Cow<'a, str>,
    /// The id as sent (a string, a number or `null`); `None` for a notification.
    id: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
}

/// What one element of a request turned out to be.
#[derive(Debug)]
pub(super) enum Parsed<'a> {
    /// A call to authorise and run.
    Call(Call<'a>),
    /// Not a valid request object: answered with "Invalid request" and this id, never run.
    Invalid {
        /// The request's id if it had a usable one, else `null`.
        id: Value,
    },
}

/// Parse one JSON value of a request body (the caller has already bounded its nesting depth).
pub(super) fn parse(text: &str) -> Parsed<'_> {
    let Ok(wire) = serde_json::from_str::<Wire>(text) else {
        let id = serde_json::from_str::<IdOnly>(text)
            .ok()
            .and_then(|only| only.id)
            .map_or(Value::Null, echoable);
        return Parsed::Invalid { id };
    };
    let id_ok = wire
        .id
        .is_none_or(|id| matches!(id.get().as_bytes()[0], b'"' | b'-' | b'0'..=b'9' | b'n'));
    if wire.jsonrpc != "2.0" || !id_ok {
        return Parsed::Invalid {
            id: wire.id.map_or(Value::Null, echoable),
        };
    }
    Parsed::Call(Call {
        method: wire.method,
        id: wire.id,
        params: wire.params,
    })
}

/// An id to put into an error answer: numbers and strings as sent, anything else `null`.
fn echoable(id: &RawValue) -> Value {
    match serde_json::from_str::<Value>(id.get()) {
        Ok(id @ (Value::Number(_) | Value::String(_))) => id,
        _ => Value::Null,
    }
}

impl Call<'_> {
    /// Whether this call has no id, so is run but never answered.
    pub(super) fn is_notification(&self) -> bool {
        self.id.is_none()
    }

    /// The id to put into an answer made here.
    pub(super) fn answer_id(&self) -> Value {
        self.id.map_or(Value::Null, echoable)
    }

    /// The request text to execute, written from the parsed parts only: `jsonrpc`, `id`,
    /// `method`, `params`, nothing else. A notification gets id `null` (jsonrpsee only executes
    /// requests; the answer is then dropped).
    pub(super) fn canonical(&self) -> String {
        let method = serde_json::to_string(&*self.method).expect("a string always serialises");
        let id = self.id.map_or("null", RawValue::get);
        let mut text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":{method}"#);
        if let Some(params) = self.params {
            text.push_str(r#","params":"#);
            text.push_str(params.get());
        }
        text.push('}');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(text: &str) -> Call<'_> {
        match parse(text) {
            Parsed::Call(call) => call,
            Parsed::Invalid { .. } => panic!("{text} should be a call"),
        }
    }

    fn invalid(text: &str) -> Value {
        match parse(text) {
            Parsed::Invalid { id } => id,
            Parsed::Call(call) => panic!("{text} should be invalid, got {call:?}"),
        }
    }

    #[test]
    fn canonical_text_holds_only_the_parsed_parts() {
        let c = call(
            r#" { "params" : [1, {"a": "b"}], "method":"st\u006fp", "id":"x\"y", "jsonrpc":"2.0" } "#,
        );
        assert_eq!(c.method, "stop");
        assert!(!c.is_notification());
        assert_eq!(c.answer_id(), json!("x\"y"));
        let text = c.canonical();
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":"x\"y","method":"stop","params":[1, {"a": "b"}]}"#
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["method"], json!("stop"));
    }

    #[test]
    fn null_id_is_a_request_and_no_id_a_notification() {
        let c = call(r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#);
        assert!(!c.is_notification());
        assert_eq!(c.canonical(), r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#);
        let c = call(r#"{"jsonrpc":"2.0","method":"m","params":null}"#);
        assert!(c.is_notification());
        assert_eq!(c.canonical(), r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#);
    }

    #[test]
    fn duplicate_members_are_invalid() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"get_info","method":"stop"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"stop","method":"get_info"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"get_info","m\u0065thod":"stop"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[],"params":[]}"#,
            r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"x"}"#,
        ] {
            invalid(text);
        }
        // A duplicate id: the error answer cannot tell which was meant.
        assert_eq!(
            invalid(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#),
            Value::Null
        );
    }

    #[test]
    fn malformed_calls_are_invalid_with_their_id_echoed() {
        assert_eq!(
            invalid(r#"{"jsonrpc":"1.0","id":"a","method":"m"}"#),
            json!("a")
        );
        assert_eq!(invalid(r#"{"id":3,"method":"m"}"#), json!(3));
        assert_eq!(invalid(r#"{"jsonrpc":"2.0","id":4}"#), json!(4));
        assert_eq!(invalid(r#"{"jsonrpc":"2.0","id":5,"method":7}"#), json!(5));
        assert_eq!(invalid(r#"{"jsonrpc":2.0,"id":6,"method":"m"}"#), json!(6));
        assert_eq!(
            invalid(r#"{"jsonrpc":"2.0","id":7,"method":"m","extra":1}"#),
            json!(7)
        );
        for id in ["{}", "[1]", "true"] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
            assert_eq!(invalid(&text), Value::Null, "{text}");
        }
        for text in ["5", "\"m\"", "[]", "null", "{}"] {
            assert_eq!(invalid(text), Value::Null, "{text}");
        }
    }
}
