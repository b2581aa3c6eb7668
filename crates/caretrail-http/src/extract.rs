//! Extractors whose rejections are problem+json and never echo what the client sent.
//!
//! axum's own `Path` and `Query` reject with `text/plain` bodies that quote the offending
//! value (`Cannot parse "13800138001" to a UUID`), and a value in a URL can be personal data.
//! These wrappers name the parameter (a name the route or the parameter type defines) and
//! what it must be, and nothing else.

use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A path parameter; a value that does not parse answers 400 `invalid_path_parameter`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

/// What a Rust type name means to a client.
fn expected(type_name: &str) -> &'static str {
    match type_name.rsplit("::").next().unwrap_or(type_name) {
        "Uuid" => "a UUID",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "NaiveDate" => "a date (YYYY-MM-DD)",
        _ => "a valid value",
    }
}

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                // A route's only parameter parsed as a whole value is reported without its
                // name: take the name from the route (one the route defines, not the client).
                let only_key =
                    match axum::extract::RawPathParams::from_request_parts(parts, state).await {
                        Ok(raw) if raw.iter().count() == 1 => raw
                            .iter()
                            .next()
                            .map(|(k, _)| k.to_owned())
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                let detail = match e.kind() {
                    ErrorKind::ParseErrorAtKey {
                        key, expected_type, ..
                    } => format!(
                        "the path parameter {key} must be {}",
                        expected(expected_type)
                    ),
                    ErrorKind::ParseError { expected_type, .. } => format!(
                        "the path parameter {only_key} must be {}",
                        expected(expected_type)
                    ),
                    ErrorKind::InvalidUtf8InPathParam { key } => {
                        format!("the path parameter {key} is not UTF-8 text")
                    }
                    ErrorKind::DeserializeError { key, .. } => {
                        format!("the path parameter {key} is not valid")
                    }
                    _ => "a path parameter is not valid".to_owned(),
                };
                Err(ApiError::bad_request("invalid_path_parameter", detail))
            }
            // A route whose handler asks for parameters it does not declare: a bug here.
            Err(other) => Err(ApiError::internal(&other.body_text())),
        }
    }
}

/// The query string; one that does not parse answers 400 `invalid_query`, naming the
/// parameter when it is one the endpoint defines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Parses a query string into `T`; errors name only parameters `T` defines.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let message = e.inner().to_string();
        // serde's messages quote a key only for a missing field (a name the type defines) and
        // for an unknown one (a name the client made up): only the first may be repeated.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let path = e.path().to_string();
        let detail = if let Some(field) = missing {
            format!("the query parameter {field} is required")
        } else if message.starts_with("unknown field") {
            "the query string has a parameter this endpoint does not define; see /openapi.json"
                .to_owned()
        } else if path != "." && !path.contains('?') {
            // The path is made of keys the type accepted: the value was wrong, not the key.
            format!("the query parameter {path} has an invalid value")
        } else {
            "the query string is not valid for this endpoint; see /openapi.json".to_owned()
        };
        ApiError::bad_request("invalid_query", detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        after: Option<u64>,
        kind: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Required {
        index: u64,
    }

    fn detail(e: ApiError) -> String {
        assert_eq!(e.code, "invalid_query");
        e.detail.unwrap()
    }

    /// Hardening, API contract: a query error names a defined parameter, never the value
    /// sent nor a key the endpoint does not define.
    #[test]
    fn query_errors_name_defined_parameters_only() {
        let d = detail(parse_query::<Params>("after=13800138001x").unwrap_err());
        assert_eq!(d, "the query parameter after has an invalid value");
        let d = detail(parse_query::<Params>("phone13800138001=1").unwrap_err());
        assert!(!d.contains("13800138001"), "{d}");
        assert!(d.contains("does not define"), "{d}");
        let d = detail(parse_query::<Required>("").unwrap_err());
        assert_eq!(d, "the query parameter index is required");
        let d = detail(parse_query::<Required>("index=-1%60%22").unwrap_err());
        assert_eq!(d, "the query parameter index has an invalid value");
        let p: Params = parse_query("after=3&kind=x").unwrap();
        assert_eq!(p.after, Some(3));
    }
}
