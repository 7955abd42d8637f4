//! Input decoding and validation from the generated model: URI labels, query parameters and the
//! JSON body are gathered into one object keyed by member name, type-checked, then checked
//! against the model's constraints with the messages AWS services use:
//! `1 validation error detected: Value 'x' at 'playerId' failed to satisfy constraint: Member
//! must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$`.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::model_types::{Constraint, Kind, Location, Member};
use crate::error::AwsError;

/// A pattern as the model writes it (Java syntax), compiled for Rust: a leading negative
/// look-ahead of a literal, `^(?!aws:)`, becomes a prefix check.
struct Matcher {
    not_prefix: Option<String>,
    regex: Option<regex::Regex>,
}

impl Matcher {
    fn new(pattern: &str) -> Matcher {
        let (not_prefix, rest) = match pattern.strip_prefix("^(?!").and_then(|r| r.split_once(')'))
        {
            Some((literal, rest)) => (Some(literal.to_string()), format!("^{rest}")),
            None => (None, pattern.to_string()),
        };
        let regex = regex::Regex::new(&rest)
            .map_err(|e| tracing::error!(pattern, error = %e, "model pattern does not compile"))
            .ok();
        Matcher { not_prefix, regex }
    }

    fn is_match(&self, s: &str) -> bool {
        if let Some(prefix) = &self.not_prefix {
            if s.starts_with(prefix.as_str()) {
                return false;
            }
        }
        // A pattern that does not compile accepts nothing (and is caught by the tests).
        self.regex.as_ref().is_some_and(|r| r.is_match(s))
    }
}

fn matcher(pattern: &'static str) -> &'static Matcher {
    static CACHE: OnceLock<parking_lot::Mutex<HashMap<&'static str, &'static Matcher>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock();
    map.entry(pattern)
        .or_insert_with(|| Box::leak(Box::new(Matcher::new(pattern))))
}

/// `GameName` -> `gameName`, as AWS names members in validation messages.
pub fn member_path(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A value as Java would print it in a validation message.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// Violations of a scalar or collection-size constraint (no nesting).
fn own_violations(c: &Constraint, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (len, noun) = match value {
        Value::String(s) => (Some(s.chars().count() as i64), "length"),
        Value::Object(m) => (Some(m.len() as i64), "length"),
        Value::Array(a) => (Some(a.len() as i64), "length"),
        Value::Number(n) => (n.as_i64(), "value"),
        _ => (None, "length"),
    };
    if let Some(len) = len {
        if let Some(max) = c.max {
            if len > max {
                out.push(format!(
                    "Member must have {noun} less than or equal to {max}"
                ));
            }
        }
        if let Some(min) = c.min {
            if len < min {
                out.push(format!(
                    "Member must have {noun} greater than or equal to {min}"
                ));
            }
        }
    }
    if let (Some(pattern), Value::String(s)) = (c.pattern, value) {
        if !matcher(pattern).is_match(s) {
            out.push(format!(
                "Member must satisfy regular expression pattern: {pattern}"
            ));
        }
    }
    if let (false, Value::String(s)) = (c.enum_values.is_empty(), value) {
        if !c.enum_values.contains(&s.as_str()) {
            out.push(format!(
                "Member must satisfy enum value set: [{}]",
                c.enum_values.join(", ")
            ));
        }
    }
    out
}

/// Appends the validation errors of `value` at `path` to `errors`.
fn check(c: &Constraint, path: &str, value: &Value, errors: &mut Vec<String>) {
    let shown = show(value);
    let at =
        |msg: String| format!("Value '{shown}' at '{path}' failed to satisfy constraint: {msg}");
    for v in own_violations(c, value) {
        errors.push(at(v));
    }
    match (c.kind, value) {
        (Kind::Map, Value::Object(m)) => {
            if let Some(kc) = c.key {
                let mut key_errors: Vec<String> = Vec::new();
                for k in m.keys() {
                    for v in own_violations(kc, &Value::String(k.clone())) {
                        if !key_errors.contains(&v) {
                            key_errors.push(v);
                        }
                    }
                }
                if !key_errors.is_empty() {
                    errors.push(at(format!(
                        "Map keys must satisfy constraint: [{}]",
                        key_errors.join(", ")
                    )));
                }
            }
            if let Some(vc) = c.value {
                let mut value_errors: Vec<String> = Vec::new();
                for v in m.values() {
                    for e in own_violations(vc, v) {
                        if !value_errors.contains(&e) {
                            value_errors.push(e);
                        }
                    }
                }
                if !value_errors.is_empty() {
                    errors.push(at(format!(
                        "Map value must satisfy constraint: [{}]",
                        value_errors.join(", ")
                    )));
                }
            }
        }
        (Kind::List, Value::Array(items)) => {
            if let Some(mc) = c.value {
                let mut member_errors: Vec<String> = Vec::new();
                for item in items {
                    for e in own_violations(mc, item) {
                        if !member_errors.contains(&e) {
                            member_errors.push(e);
                        }
                    }
                }
                if !member_errors.is_empty() {
                    errors.push(at(format!(
                        "Member must satisfy constraint: [{}]",
                        member_errors.join(", ")
                    )));
                }
            }
        }
        _ => {}
    }
}

/// Whether a JSON value has the kind the model wants (maps of strings, lists of strings).
fn kind_ok(c: &Constraint, value: &Value) -> bool {
    match (c.kind, value) {
        (Kind::String, Value::String(_)) => true,
        (Kind::Integer, Value::Number(n)) => n.as_i64().is_some(),
        (Kind::Boolean, Value::Bool(_)) => true,
        (Kind::Map, Value::Object(m)) => {
            let vc = c.value;
            m.values().all(|v| vc.is_none_or(|vc| kind_ok(vc, v)))
        }
        (Kind::List, Value::Array(a)) => {
            let mc = c.value;
            a.iter().all(|v| mc.is_none_or(|mc| kind_ok(mc, v)))
        }
        (Kind::Structure | Kind::Document, Value::Object(_)) => true,
        (Kind::Timestamp, Value::String(_) | Value::Number(_)) => true,
        (Kind::Blob, Value::String(_)) => true,
        _ => false,
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::String => "a string",
        Kind::Integer => "an integer",
        Kind::Boolean => "a boolean",
        Kind::Map => "an object of strings",
        Kind::List => "a list of strings",
        Kind::Structure | Kind::Document => "an object",
        Kind::Timestamp => "a timestamp",
        Kind::Blob => "a base64 string",
    }
}

/// What a request carries, before decoding: decoded URI labels, decoded query pairs, body.
pub struct RawInput<'a> {
    pub labels: Vec<(&'static str, String)>,
    pub query: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// Gathers and checks the input of an operation; returns it as one JSON object keyed by
/// member name (absent members are absent).
pub fn decode_input(members: &[Member], raw: RawInput<'_>) -> Result<Map<String, Value>, AwsError> {
    let has_body_members = members.iter().any(|m| m.location == Location::Body);
    let body: Map<String, Value> = if raw.body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else if has_body_members {
        match serde_json::from_slice::<Value>(raw.body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(AwsError::serialization(
                    "the request body must be a JSON object",
                ))
            }
            Err(e) => {
                return Err(AwsError::serialization(format!(
                    "the request body is not valid JSON: {e}"
                )))
            }
        }
    } else {
        // The operation has no body members (DisconnectPlayer): whatever was sent is ignored,
        // as it was signed with the rest of the request.
        Map::new()
    };

    let mut input = Map::new();
    for member in members {
        let value = match member.location {
            Location::Uri => raw
                .labels
                .iter()
                .find(|(l, _)| *l == member.location_name)
                .map(|(_, v)| Value::String(v.clone())),
            Location::Query => {
                let values: Vec<&String> = raw
                    .query
                    .iter()
                    .filter(|(k, _)| k == member.location_name)
                    .map(|(_, v)| v)
                    .collect();
                if values.is_empty() {
                    None
                } else {
                    match member.constraint.kind {
                        Kind::List => Some(Value::Array(
                            values.iter().map(|v| Value::String((*v).clone())).collect(),
                        )),
                        Kind::Integer => match values[0].trim().parse::<i64>() {
                            Ok(n) => Some(Value::from(n)),
                            Err(_) => {
                                return Err(AwsError::validation(format!(
                                    "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: Member must be an integer",
                                    values[0],
                                    member_path(member.name)
                                )))
                            }
                        },
                        Kind::Boolean => Some(Value::Bool(values[0] == "true")),
                        _ => Some(Value::String(values[0].clone())),
                    }
                }
            }
            Location::Header => None,
            Location::Body => body.get(member.name).filter(|v| !v.is_null()).cloned(),
        };
        if let Some(value) = value {
            if !kind_ok(member.constraint, &value) {
                return Err(AwsError::serialization(format!(
                    "{} must be {}",
                    member.name,
                    kind_name(member.constraint.kind)
                )));
            }
            input.insert(member.name.to_string(), value);
        }
    }

    let mut errors = Vec::new();
    for member in members {
        let path = member_path(member.name);
        match input.get(member.name) {
            None if member.required => errors.push(format!(
                "Value null at '{path}' failed to satisfy constraint: Member must not be null"
            )),
            None => {}
            Some(value) => check(member.constraint, &path, value, &mut errors),
        }
    }
    if !errors.is_empty() {
        let n = errors.len();
        return Err(AwsError::validation(format!(
            "{n} validation error{} detected: {}",
            if n == 1 { "" } else { "s" },
            errors.join("; ")
        )));
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::super::generated::Operation;
    use super::*;

    fn decode(
        op: Operation,
        labels: &[(&'static str, &str)],
        query: &[(&str, &str)],
        body: &str,
    ) -> Result<Map<String, Value>, AwsError> {
        decode_input(
            op.input(),
            RawInput {
                labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
                query: query
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: body.as_bytes(),
            },
        )
    }

    fn message(r: Result<Map<String, Value>, AwsError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code, "ValidationException", "{e}");
        assert_eq!(e.status, 400);
        e.message
    }

    const OK_LABELS: [(&str, &str); 3] = [("GameName", "g"), ("StageName", "s"), ("PlayerId", "p")];

    #[test]
    fn every_pattern_of_the_model_compiles() {
        for op in Operation::ALL {
            for m in op.input() {
                let mut stack = vec![m.constraint];
                while let Some(c) = stack.pop() {
                    if let Some(p) = c.pattern {
                        assert!(matcher(p).regex.is_some(), "{p}");
                    }
                    stack.extend(c.key);
                    stack.extend(c.value);
                }
            }
        }
    }

    #[test]
    fn player_id_rules_in_the_aws_style() {
        let op = Operation::DisconnectPlayer;
        assert!(decode(op, &OK_LABELS, &[], "").is_ok());
        assert_eq!(
            message(decode(op, &[("GameName", "g"), ("StageName", "s"), ("PlayerId", "a b")], &[], "")),
            "1 validation error detected: Value 'a b' at 'playerId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$"
        );
        let long = "p".repeat(45);
        assert_eq!(
            message(decode(op, &[("GameName", "g"), ("StageName", "s"), ("PlayerId", &long)], &[], "")),
            format!("1 validation error detected: Value '{long}' at 'playerId' failed to satisfy constraint: Member must have length less than or equal to 44")
        );
        assert!(decode(
            op,
            &[
                ("GameName", "g"),
                ("StageName", "s"),
                ("PlayerId", &"p".repeat(44))
            ],
            &[],
            ""
        )
        .is_ok());
        assert_eq!(
            message(decode(op, &[("GameName", "g"), ("StageName", "s"), ("PlayerId", "")], &[], "")),
            "2 validation errors detected: Value '' at 'playerId' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '' at 'playerId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$"
        );
        let long_game = "g".repeat(37);
        let m = message(decode(
            op,
            &[
                ("GameName", &long_game),
                ("StageName", "s!"),
                ("PlayerId", "p"),
            ],
            &[],
            "",
        ));
        assert!(m.starts_with("2 validation errors detected: "), "{m}");
        assert!(m.contains("at 'gameName' failed to satisfy constraint: Member must have length less than or equal to 36"), "{m}");
        assert!(m.contains("Value 's!' at 'stageName' failed to satisfy constraint: Member must satisfy regular expression pattern"), "{m}");
        // A body sent to DisconnectPlayer is ignored.
        assert!(decode(op, &OK_LABELS, &[], "not json").is_ok());
    }

    #[test]
    fn bodies_queries_maps_and_lists() {
        let m = message(decode(Operation::CreateGame, &[], &[], "{}"));
        assert_eq!(m, "1 validation error detected: Value null at 'gameName' failed to satisfy constraint: Member must not be null");
        let input = decode(
            Operation::CreateGame,
            &[],
            &[],
            r#"{"GameName":"g","Description":"d","Tags":{"k":"v"},"Unknown":1}"#,
        )
        .unwrap();
        assert_eq!(input["GameName"], "g");
        assert!(!input.contains_key("Unknown"));
        let m = message(decode(
            Operation::CreateGame,
            &[],
            &[],
            r#"{"GameName":"g","Description":" padded "}"#,
        ));
        assert!(m.contains("at 'description' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\S(.*\\S)?$|^$"), "{m}");
        assert!(decode(
            Operation::CreateGame,
            &[],
            &[],
            r#"{"GameName":"g","Description":""}"#
        )
        .is_ok());
        let m = message(decode(
            Operation::CreateGame,
            &[],
            &[],
            r#"{"GameName":"g","Tags":{"aws:x":"v","ok":"v"}}"#,
        ));
        assert_eq!(m, "1 validation error detected: Value '{aws:x=v, ok=v}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: ^(?!aws:)[a-zA-Z+-=._:/]+$]");
        let m = message(decode(
            Operation::CreateGame,
            &[],
            &[],
            r#"{"GameName":"g","Tags":{}}"#,
        ));
        assert!(
            m.contains("Member must have length greater than or equal to 1"),
            "{m}"
        );
        let e = decode(Operation::CreateGame, &[], &[], r#"{"GameName":5}"#).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = decode(Operation::CreateGame, &[], &[], "{").unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let m = message(decode(
            Operation::CreateGame,
            &[],
            &[],
            r#"{"GameName":"g","ClientToken":"short"}"#,
        ));
        assert!(m.contains("at 'clientToken' failed to satisfy constraint: Member must have length greater than or equal to 33"), "{m}");

        let m = message(decode(
            Operation::CreateStage,
            &[("GameName", "g")],
            &[],
            r#"{"StageName":"s","Role":"not-a-role-arn-at-all"}"#,
        ));
        assert!(m.contains("at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern"), "{m}");
        assert!(decode(
            Operation::CreateStage,
            &[("GameName", "g")],
            &[],
            r#"{"StageName":"s","Role":"arn:aws:iam::123456789012:role/GameSparks"}"#
        )
        .is_ok());

        let input = decode(
            Operation::ListGames,
            &[],
            &[("MaxResults", "10"), ("NextToken", "n1.a")],
            "",
        )
        .unwrap();
        assert_eq!(input["MaxResults"], 10);
        let m = message(decode(
            Operation::ListGames,
            &[],
            &[("MaxResults", "0")],
            "",
        ));
        assert_eq!(m, "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1");
        let m = message(decode(
            Operation::ListGames,
            &[],
            &[("MaxResults", "101")],
            "",
        ));
        assert!(m.contains("Member must have value less than or equal to 100"));
        assert!(message(decode(
            Operation::ListGames,
            &[],
            &[("MaxResults", "x")],
            ""
        ))
        .contains("integer"));

        let arn = "arn:aws:gamesparks:us-east-1:123456789012:game/g";
        let input = decode(
            Operation::UntagResource,
            &[("ResourceArn", arn)],
            &[("tagKeys", "a"), ("tagKeys", "b")],
            "",
        )
        .unwrap();
        assert_eq!(input["tagKeys"], serde_json::json!(["a", "b"]));
        let m = message(decode(
            Operation::UntagResource,
            &[("ResourceArn", arn)],
            &[],
            "",
        ));
        assert!(m.contains("Value null at 'tagKeys'"), "{m}");
        let m = message(decode(
            Operation::UntagResource,
            &[("ResourceArn", arn)],
            &[("tagKeys", "aws:x")],
            "",
        ));
        assert!(
            m.contains(
                "Member must satisfy constraint: [Member must satisfy regular expression pattern"
            ),
            "{m}"
        );
        let m = message(decode(
            Operation::TagResource,
            &[("ResourceArn", "arn:aws:iam::123456789012:x")],
            &[],
            r#"{"tags":{"a":"b"}}"#,
        ));
        assert!(m.contains("at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws:gamesparks:"), "{m}");
    }
}
