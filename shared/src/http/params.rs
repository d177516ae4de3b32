//! The parameter grammar of every request, query string and body alike: form encoding with
//! Stripe's bracket lists (`types[]=a`, `types[0]=a`), or a JSON object. Parsed once into
//! [`Params`], whose typed accessors take each parameter out; whatever is left at the end is an
//! unknown parameter.

use std::collections::BTreeMap;

use http::HeaderMap;
use serde_json::{Map, Value};

use crate::error::{ApiError, Code, shorten};
use crate::model::ids::Timestamp;
use crate::model::list::{Cursor, Limit, MAX_LIMIT, PageQuery};

/// The largest request body accepted (`extract::read_body`): every parameter at its longest fits easily.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request's parameters, lists as arrays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    values: Map<String, Value>,
    /// A list's name as the request first wrote it (`expand[]`), for an unknown-parameter error.
    written: BTreeMap<String, String>,
}

impl Params {
    /// A query string (`limit=3&types[]=payment.*&created[gte]=…`).
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        Self::from_form(query.as_bytes())
    }

    /// A request body: JSON when it says so (or looks like an object), form-encoded otherwise.
    pub fn from_body(headers: &HeaderMap, raw: &[u8]) -> Result<Self, ApiError> {
        let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_json = content_type.starts_with("application/json") || raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !is_json {
            return Self::from_form(raw);
        }
        match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(values)) => Ok(Params { values, written: BTreeMap::new() }),
            _ => Err(ApiError::request(Code::ParameterInvalid, "The request body is not a JSON object.")),
        }
    }

    /// `a=1&b[]=2&b[1]=3`: plain keys once each, `name[]` and `name[N]` gathered into a list.
    fn from_form(raw: &[u8]) -> Result<Self, ApiError> {
        let mut params = Params::default();
        for (k, v) in form_urlencoded::parse(raw) {
            let value = Value::String(v.into_owned());
            let both = || ApiError::invalid(Code::ParameterInvalid, k.as_ref(), format!("{k} was given both as a list and a value."));
            match list_name(&k) {
                Some(name) => {
                    params.written.entry(name.clone()).or_insert_with(|| k.to_string());
                    match params.values.entry(name).or_insert_with(|| Value::Array(vec![])) {
                        Value::Array(a) => a.push(value),
                        _ => return Err(both()),
                    }
                }
                None => match params.values.insert(k.to_string(), value) {
                    None => {}
                    Some(Value::Array(_)) => return Err(both()),
                    Some(_) => {
                        return Err(ApiError::invalid(Code::ParameterDuplicated, k.as_ref(), format!("The parameter {k} was given more than once.")));
                    }
                },
            }
        }
        Ok(params)
    }

    /// The parameters as one JSON object (what an idempotency fingerprint covers).
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.values
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.values.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(Code::ParameterInvalid, name, format!("{name} must be a string."))),
        }
    }

    /// A whole number from `min` to `max` (a JSON number or a string of digits) that may be cleared:
    /// absent → `None`; JSON `null` or `""` → `Some(None)` (clear it); else `Some(Some(n))`.
    pub fn clearable_number(&mut self, name: &str, min: u32, max: u32) -> Result<Option<Option<u32>>, ApiError> {
        let bad = || ApiError::invalid(Code::ParameterInvalid, name, format!("{name} must be a whole number from {min} to {max}, or empty to remove it."));
        match self.values.remove(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
            Some(v) => whole_in(&v, min, max).map(|n| Some(Some(n))).ok_or_else(bad),
        }
    }

    /// A whole number from `min` to `max` (a JSON number or a string of digits), if given.
    pub fn whole_number(&mut self, name: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
        let bad = || ApiError::invalid(Code::ParameterInvalidInteger, name, format!("{name} must be a whole number from {min} to {max}."));
        match self.values.remove(name) {
            None | Some(Value::Null) => Ok(None),
            // Digits with spaces around them are the number.
            Some(Value::String(s)) => whole_in(&Value::String(s.trim().to_owned()), min, max).map(Some).ok_or_else(bad),
            Some(v) => whole_in(&v, min, max).map(Some).ok_or_else(bad),
        }
    }

    /// A map of strings: `name[field]=value` in a form, an object in JSON; `(field, value)` pairs.
    pub fn object(&mut self, name: &str) -> Result<Vec<(String, String)>, ApiError> {
        let not_strings = |field: &str| {
            ApiError::invalid(Code::ParameterInvalid, format!("{name}[{}]", shorten(field)), format!("{name}[{}] must be a string.", shorten(field)))
        };
        let mut pairs = Vec::new();
        match self.values.remove(name) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (field, value) in map {
                    match value {
                        Value::String(s) => pairs.push((field, s)),
                        _ => return Err(not_strings(&field)),
                    }
                }
            }
            Some(_) => return Err(ApiError::invalid(Code::ParameterInvalid, name, format!("{name} must be an object ({name}[field]=…)."))),
        }
        let prefix = format!("{name}[");
        let fields: Vec<String> = self.values.keys().filter(|k| k.starts_with(&prefix) && k.ends_with(']')).cloned().collect();
        for key in fields {
            let field = key[prefix.len()..key.len() - 1].to_owned();
            match self.values.remove(&key) {
                Some(Value::String(s)) => pairs.push((field, s)),
                _ => return Err(not_strings(&field)),
            }
        }
        Ok(pairs)
    }

    /// A string that must be there and not blank.
    pub fn required(&mut self, name: &str) -> Result<String, ApiError> {
        self.string(name)?.filter(|s| !s.trim().is_empty()).ok_or_else(|| missing(name))
    }

    /// Unix seconds (a JSON number or a string) or an RFC 3339 string.
    pub fn timestamp(&mut self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        match self.values.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_time(name, &s).map(Some),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|s| Some(Timestamp(s)))
                .ok_or_else(|| ApiError::invalid(Code::ParameterInvalid, name, format!("{name} must be unix seconds (0 or more) or RFC 3339."))),
            Some(_) => Err(ApiError::invalid(Code::ParameterInvalid, name, format!("{name} must be unix seconds or RFC 3339."))),
        }
    }

    /// A list of strings (`name[]=…` in a form, an array in JSON).
    pub fn list(&mut self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.values.remove(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    _ => Err(ApiError::invalid(Code::ParameterInvalid, name, format!("{name} must be a list of strings."))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::invalid(Code::ParameterInvalid, name, format!("{name} must be a list ({name}[]=…)."))),
        }
    }

    /// `limit`, and one of `starting_after` / `ending_before` naming an object of the list
    /// (`kind`: "an event id (evt_…)", as error messages quote it).
    pub fn page<Id: std::str::FromStr>(&mut self, kind: &str) -> Result<PageQuery<Id>, ApiError> {
        let limit = self.string("limit")?.map(|v| parse_limit(&v)).transpose()?.unwrap_or_default();
        let mut cursor = |param: &str| -> Result<Option<Id>, ApiError> {
            let Some(v) = self.string(param)? else { return Ok(None) };
            v.parse().map(Some).map_err(|_| ApiError::invalid(Code::ResourceMissing, param, format!("Invalid {param}: '{}' is not {kind}.", shorten(&v))))
        };
        let cursor = match (cursor("starting_after")?, cursor("ending_before")?) {
            (Some(_), Some(_)) => return Err(exclusive("ending_before", &["starting_after", "ending_before"])),
            (Some(a), None) => Some(Cursor::StartingAfter(a)),
            (None, Some(b)) => Some(Cursor::EndingBefore(b)),
            (None, None) => None,
        };
        Ok(PageQuery { limit, cursor })
    }

    /// Succeeds when every parameter was taken.
    pub fn done(self) -> Result<(), ApiError> {
        match self.values.keys().next() {
            Some(k) => Err(ApiError::unknown_parameter(self.written.get(k).unwrap_or(k))),
            None => Ok(()),
        }
    }
}

/// `value` as a whole number from `min` to `max`: a JSON number, or a string of digits.
fn whole_in(value: &Value, min: u32, max: u32) -> Option<u32> {
    let n = match value {
        Value::String(s) => s.parse::<u32>().ok()?,
        Value::Number(n) => u32::try_from(n.as_u64()?).ok()?,
        _ => return None,
    };
    (min..=max).contains(&n).then_some(n)
}

/// `name` of `name[]` or `name[12]`; `None` for any other key (`created[gte]`, `types[x]`).
fn list_name(key: &str) -> Option<String> {
    let (name, index) = key.strip_suffix(']')?.split_once('[')?;
    (index.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()).then(|| name.to_owned())
}

pub fn missing(param: &str) -> ApiError {
    ApiError::invalid(Code::ParameterMissing, param, format!("Missing required param: {param}."))
}

/// Two or more parameters that exclude each other were given; `param` names the one to drop.
pub fn exclusive(param: &str, all: &[&str]) -> ApiError {
    ApiError::invalid(Code::ParametersExclusive, param, format!("You may only specify one of these parameters: {}.", all.join(", ")))
}

pub fn parse_limit(v: &str) -> Result<Limit, ApiError> {
    let n: i64 = v.parse().map_err(|_| ApiError::invalid(Code::ParameterInvalidInteger, "limit", format!("Invalid integer: {}", shorten(v))))?;
    u8::try_from(n)
        .ok()
        .and_then(Limit::new)
        .ok_or_else(|| ApiError::invalid(Code::ParameterInvalidInteger, "limit", format!("Invalid limit: must be between 1 and {MAX_LIMIT}; {n} was given.")))
}

/// Unix seconds or RFC 3339, to the second.
pub fn parse_time(param: &str, v: &str) -> Result<Timestamp, ApiError> {
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Timestamp(secs));
    }
    v.parse::<Timestamp>().map_err(|_| {
        ApiError::invalid(Code::ParameterInvalid, param, format!("Invalid timestamp for {param}: '{}'; use unix seconds or RFC 3339.", shorten(v)))
    })
}

/// A value as quoted back in an error message: at most 64 characters.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_lists_and_plain_keys() {
        let mut p = Params::from_query("a=1&t[]=x&t[3]=y&created[gte]=5&types[x]=z").unwrap();
        assert_eq!(p.list("t").unwrap(), Some(vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(p.string("a").unwrap().as_deref(), Some("1"));
        assert_eq!(p.string("created[gte]").unwrap().as_deref(), Some("5"));
        assert_eq!(p.done().unwrap_err().body()["error"]["param"], "types[x]");
        let e = Params::from_query("a=1&a=2").unwrap_err();
        assert_eq!(e.body()["error"]["code"], "parameter_duplicated");
        let e = Params::from_query("a[]=1&a=2").unwrap_err();
        assert_eq!(e.body()["error"]["code"], "parameter_invalid");
    }

    #[test]
    fn bodies_are_json_objects_or_forms() {
        let json = HeaderMap::from_iter([(http::header::CONTENT_TYPE, "application/json".parse().unwrap())]);
        let mut p = Params::from_body(&json, br#"{"url": "https://x", "enabled_events": ["*"]}"#).unwrap();
        assert_eq!(p.list("enabled_events").unwrap(), Some(vec!["*".to_owned()]));
        assert!(Params::from_body(&json, b"[1]").is_err());
        let mut p = Params::from_body(&HeaderMap::new(), b"url=https%3A%2F%2Fx&enabled_events[]=%2A").unwrap();
        assert_eq!(p.required("url").unwrap(), "https://x");
    }
}
