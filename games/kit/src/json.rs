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
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    KitError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// Parses a load request's parameters. Empty text and `null` mean "all defaults"; unknown
/// keys are rejected when `T` is `#[serde(deny_unknown_fields)]` (game params should be).
pub fn parse_params<T: DeserializeOwned + Default>(
    game: &str,
    params_json: &str,
) -> Result<T, KitError> {
    let text = params_json.trim();
    if text.is_empty() || text == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(text).map_err(|e| KitError::Params {
        game: game.to_string(),
        message: e.to_string(),
    })
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
        let err = parse_params::<P>("g", "{\"y\": 3}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `y`"), "{err}");
    }

    #[test]
    fn json_errors_have_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, "{\n  \"x\": \"three\"\n}").unwrap();
        let err = read_json::<P>(&path).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("c.json") && text.contains("line 2, column"),
            "{text}"
        );
    }
}
