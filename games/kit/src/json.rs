//! JSON in and out of a game: data files, load parameters, and the private rendering
//! context a game stores in each decision point.

use crate::KitError;
use descry_abi::types::DecisionPoint;
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

/// Reads a JSON file into `T`; a parse or shape error names the file, line and column.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, KitError> {
    let file = std::fs::File::open(path).map_err(|e| KitError::io(path, e))?;
    serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| json_error(path, e))
}

/// A serde_json error on `path` as a [`KitError`] (I/O errors stay I/O errors).
pub fn json_error(path: &Path, e: serde_json::Error) -> KitError {
    if e.is_io() {
        return KitError::io(path, std::io::Error::other(e.to_string()));
    }
    // serde_json appends " at line L column C" to its message; the fields carry them.
    let message = without_position(&e);
    KitError::Json { path: path.to_path_buf(), line: e.line(), column: e.column(), message }
}

/// Parses a load request's parameters. Empty text and `null` mean "all defaults"; unknown
/// keys are rejected when `T` is `#[serde(deny_unknown_fields)]` (game params should be).
///
/// The JSON is made by the host from the study's `params` table, so an error names the
/// parameter (its key, dotted for nested ones) and what it accepts, never a line or column
/// of that JSON, which the researcher has not seen.
pub fn parse_params<T: DeserializeOwned + Default>(
    game: &str,
    params_json: &str,
) -> Result<T, KitError> {
    let error = |message: String| KitError::Params { game: game.to_string(), message };
    let text = params_json.trim();
    if text.is_empty() || text == "null" {
        return Ok(T::default());
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| error(format!("not JSON ({})", without_position(&e))))?;
    // From a `Value`, serde_json's errors carry no position; the path names the key.
    serde_path_to_error::deserialize(&value).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner().to_string();
        let fields = struct_fields::<T>();
        let list = |fields: &[&str]| {
            fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        };
        if !value.is_object() {
            let keys = fields.map_or(String::new(), |f| format!(" ({})", list(f)));
            return error(format!("the parameters must be a table of keys{keys}, not {value}"));
        }
        if let Some(rest) = inner.strip_prefix("unknown field `") {
            let unknown = rest.split('`').next().unwrap_or(rest);
            let known = match fields {
                Some([]) => "this game takes no parameters".to_string(),
                Some(f) => format!("the parameters of this game are {}", list(f)),
                None => inner.clone(),
            };
            return error(format!("unknown parameter `{unknown}`; {known}"));
        }
        if key == "." {
            // The table as a whole (e.g. a required key missing).
            return error(inner);
        }
        error(format!("parameter `{key}`: {inner}"))
    })
}

/// serde_json's message without the " at line L column C" it appends.
fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    }
}

/// The field names of `T` when it deserializes as a struct (what serde derive passes to
/// `deserialize_struct`), so that a message can list the keys a game accepts.
fn struct_fields<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    use serde::de::{self, Visitor};
    struct Probe<'a>(&'a mut Option<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields = None;
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Serializes a game's rendering context (or metadata) for a decision point.
pub fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing plain structs of strings, numbers and vectors cannot fail; an empty
    // object keeps the point loadable if a future field ever could.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

/// Reads back the context a game stored in `point.context_json`.
pub fn context<T: DeserializeOwned>(point: &DecisionPoint) -> Result<T, KitError> {
    serde_json::from_str(point.context_json.as_str()).map_err(|e| KitError::Render {
        point: point.id.to_string(),
        message: format!("its context was not made by this game ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields, default)]
    struct P {
        x: u32,
    }

    #[test]
    fn params_default_and_unknown_keys() {
        assert_eq!(parse_params::<P>("g", "").unwrap().x, 0);
        assert_eq!(parse_params::<P>("g", "{\"x\": 3}").unwrap().x, 3);
        let err = parse_params::<P>("g", "{\"y\": 3}").unwrap_err().to_string();
        assert!(err.contains("unknown parameter `y`"), "{err}");
    }

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Set {
        #[default]
        Repeated,
        Oneshot,
    }

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields, default)]
    struct Q {
        set: Set,
        rounds: u32,
    }

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields)]
    struct None_ {}

    /// Issue 12: a bad parameter reported a column of the JSON the host makes from the
    /// study's `params` table. The message names the parameter and what it accepts.
    #[test]
    fn a_bad_parameter_is_named_with_what_is_expected_and_no_json_position() {
        let err = |params: &str| parse_params::<Q>("g", params).unwrap_err().to_string();
        let cases = [
            (
                r#"{"set": "triple"}"#,
                "invalid parameters for game `g`: parameter `set`: unknown variant `triple`, expected `repeated` or `oneshot`",
            ),
            (
                r#"{"set": "oneshot", "rounds": "ten"}"#,
                "parameter `rounds`: invalid type: string \"ten\", expected u32",
            ),
            (r#"{"rounds": -1}"#, "parameter `rounds`: invalid value: integer `-1`, expected u32"),
            (
                r#"{"set": "oneshot", "round": 3}"#,
                "unknown parameter `round`; the parameters of this game are `set`, `rounds`",
            ),
            ("3", "the parameters must be a table of keys (`set`, `rounds`), not 3"),
        ];
        for (params, expected) in cases {
            let e = err(params);
            assert!(e.contains(expected), "{params}: {e}");
            assert!(!e.contains("line ") && !e.contains("column"), "{params}: {e}");
        }
        assert_eq!(parse_params::<Q>("g", r#"{"set": "oneshot"}"#).unwrap().set, Set::Oneshot);
        let e = parse_params::<None_>("g", r#"{"x": 1}"#).unwrap_err().to_string();
        assert!(e.contains("unknown parameter `x`; this game takes no parameters"), "{e}");
        assert!(!e.contains("column"), "{e}");
    }

    #[test]
    fn json_errors_have_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, "{\n  \"x\": \"three\"\n}").unwrap();
        let err = read_json::<P>(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("c.json") && text.contains("line 2, column"), "{text}");
    }
}
