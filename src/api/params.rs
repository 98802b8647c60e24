//! Query-string helpers with Docker's rules. Booleans are false for "", "0", "no", "false"
//! and "none", and true otherwise. A malformed number is a 400 naming the parameter.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::{Error, Result};

/// The query string as name → last value, plus every value for repeated names.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, Vec<String>>,
}

impl Params {
    pub fn parse(query: &str) -> Self {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for (key, value) in form_pairs(query) {
            values.entry(key).or_default().push(value);
        }
        Params { values }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    pub fn flag(&self, name: &str) -> bool {
        match self.get(name) {
            None => false,
            Some(value) => !matches!(value.to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "none"),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(format!("invalid value for {name}: {value:?} is not an integer"))),
        }
    }

    /// Parses a Unix time as `seconds[.nanoseconds]`, as the docker CLI sends `since` and `until`.
    pub fn unix_time(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(value) => value
                .parse::<f64>()
                .map(Some)
                .map_err(|_| Error::invalid(format!("invalid value for {name}: {value:?} is not a Unix timestamp"))),
        }
    }
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_docker_rules() {
        let params = Params::parse("a=1&b=true&c=0&d=false&e=&f=True&g=no");
        assert!(params.flag("a"));
        assert!(params.flag("b"));
        assert!(!params.flag("c"));
        assert!(!params.flag("d"));
        assert!(!params.flag("e"));
        assert!(params.flag("f"));
        assert!(!params.flag("g"));
        assert!(!params.flag("missing"));
    }

    #[test]
    fn values_are_percent_decoded() {
        let params = Params::parse("path=%2Fetc%2Fhostname&name=a+b&filters=%7B%22x%22%3A1%7D&bad=%zz");
        assert_eq!(params.get("path"), Some("/etc/hostname"));
        assert_eq!(params.get("name"), Some("a b"));
        assert_eq!(params.get("filters"), Some("{\"x\":1}"));
        assert_eq!(params.get("bad"), Some("%zz"));
    }

    #[test]
    fn bad_integer_names_the_parameter() {
        let err = Params::parse("t=abc").int("t").unwrap_err();
        assert_eq!(err.message, "invalid value for t: \"abc\" is not an integer");
        assert_eq!(Params::parse("t=5").int("t").unwrap(), Some(5));
        assert_eq!(Params::parse("since=1700000000.5").unix_time("since").unwrap(), Some(1700000000.5));
    }
}
