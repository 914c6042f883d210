//! The one error type of the kit and of the game plugins built on it.

use std::path::PathBuf;

/// What went wrong while reading a data set or rendering a decision point. Every variant
/// caused by input data names the file, and where it can, the line and the column.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// A file or folder could not be opened or read (missing, unreadable).
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A bad value or a malformed row in a data file.
    #[error("`{path}`, line {line}, column {column}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line where the row starts.
        line: u64,
        /// The column, by name where the header has one (e.g. `` `decision` (#6) ``).
        column: String,
        /// What is wrong and, where it helps, what was expected.
        message: String,
    },
    /// A column the game needs is absent from a CSV header.
    #[error(
        "`{path}`, line 1, column `{column}`: missing from the header (the header has: {found})"
    )]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// The columns the header does have, comma-separated.
        found: String,
    },
    /// A JSON file that does not parse or does not have the expected shape.
    #[error("`{path}`, line {line}, column {column}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (character).
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// A file whose content is wrong as a whole (e.g. a key missing from a JSON table).
    #[error("`{path}`: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The game parameters of a load request are not valid for this game.
    #[error("invalid parameters for game `{game}`: {message}")]
    Params {
        /// The game.
        game: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// A decision point cannot be rendered (unknown variant, foreign context).
    #[error("cannot render decision point `{point}`: {message}")]
    Render {
        /// The decision point's id.
        point: String,
        /// Why.
        message: String,
    },
}

impl KitError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        KitError::Io { path: path.into(), source }
    }

    /// A problem with a file as a whole.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        KitError::File { path: path.into(), message: message.into() }
    }
}
