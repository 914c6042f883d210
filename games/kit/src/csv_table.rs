//! CSV files read whole, with every problem reported by file, line and column.
//!
//! [`CsvTable::read`] checks that the header has the columns a game needs, then keeps the
//! records with their line numbers; [`CsvTable::rows`] deserializes them with serde into a
//! game's row type. Line numbers are those of the file (a record whose quoted field spans
//! several lines is reported at the line where it starts); columns are named from the
//! header. Extra columns are ignored, so a published file with more columns still loads.

use crate::KitError;
use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use std::path::{Path, PathBuf};

/// A CSV file held in memory: its header and its records with their line numbers.
#[derive(Debug)]
pub struct CsvTable {
    path: PathBuf,
    headers: csv::StringRecord,
    records: Vec<(u64, csv::StringRecord)>,
}

/// One deserialized row and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<T> {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    /// The row.
    pub value: T,
}

impl CsvTable {
    /// Reads `path`, requiring every column in `required` in its header.
    ///
    /// Errors: the file cannot be opened; a column is missing (line 1, that column); a row
    /// has more or fewer fields than the header (its line, the first column it lacks or
    /// the first surplus column); a field is not valid UTF-8.
    pub fn read(path: &Path, required: &[&str]) -> Result<Self, KitError> {
        let file = std::fs::File::open(path).map_err(|e| KitError::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
        let headers =
            reader.headers().map_err(|e| csv_error(path, &csv::StringRecord::new(), e))?.clone();
        for column in required {
            if !headers.iter().any(|h| h == *column) {
                return Err(KitError::MissingColumn {
                    path: path.to_path_buf(),
                    column: (*column).to_string(),
                    found: headers.iter().collect::<Vec<_>>().join(", "),
                });
            }
        }
        let mut records = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(path, &headers, e))?;
            let line = record.position().map_or(0, |p| p.line());
            records.push((line, record));
        }
        Ok(CsvTable { path: path.to_path_buf(), headers, records })
    }

    /// The file this table was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records (the header excluded).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the file has a header and no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Deserializes every record into `T` (fields matched by header name), in file order.
    /// A value that does not parse is an error naming its line and column.
    pub fn rows<T: DeserializeOwned>(&self) -> impl Iterator<Item = Result<Row<T>, KitError>> + '_ {
        self.records.iter().map(move |(line, record)| {
            record
                .deserialize::<T>(Some(&self.headers))
                .map(|value| Row { line: *line, value })
                .map_err(|e| match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => {
                        let message = err.kind().to_string();
                        // csv knows the field of its own parse errors; for the messages of
                        // the [`de`] helpers it does not, so find the field holding the
                        // value they quote.
                        let index = err
                            .field()
                            .map(|i| i as usize)
                            .or_else(|| quoted_field(record, &message));
                        KitError::Data {
                            path: self.path.clone(),
                            line: *line,
                            column: index
                                .map_or_else(|| "(unknown)".to_string(), |i| self.column_label(i)),
                            message,
                        }
                    }
                    _ => KitError::Data {
                        path: self.path.clone(),
                        line: *line,
                        column: "(unknown)".to_string(),
                        message: e.to_string(),
                    },
                })
        })
    }

    /// An error about the value of `column` in the row starting at `line` (for checks a
    /// game makes after deserializing, such as an unknown decision value).
    pub fn error(&self, line: u64, column: &str, message: impl Into<String>) -> KitError {
        let label = match self.headers.iter().position(|h| h == column) {
            Some(i) => self.column_label(i),
            None => format!("`{column}`"),
        };
        KitError::Data { path: self.path.clone(), line, column: label, message: message.into() }
    }

    fn column_label(&self, index: usize) -> String {
        column_label(&self.headers, index)
    }
}

/// The index of the first field equal to the value a [`de`] helper's message starts
/// with (`` `value` is not ... ``).
fn quoted_field(record: &csv::StringRecord, message: &str) -> Option<usize> {
    let value = message.strip_prefix('`')?.split('`').next()?;
    record.iter().position(|f| f.trim() == value.trim())
}

/// `` `name` (#n) `` for a column with a header name, `#n (beyond the header)` otherwise.
fn column_label(headers: &csv::StringRecord, index: usize) -> String {
    match headers.get(index) {
        Some(name) => format!("`{name}` (#{})", index + 1),
        None => format!("#{} (beyond the header)", index + 1),
    }
}

/// Turns a csv reading error into a [`KitError`] with line and column.
fn csv_error(path: &Path, headers: &csv::StringRecord, error: csv::Error) -> KitError {
    let data = |line: u64, column: String, message: String| KitError::Data {
        path: path.to_path_buf(),
        line,
        column,
        message,
    };
    match error.kind() {
        csv::ErrorKind::Io(e) => KitError::io(path, std::io::Error::new(e.kind(), e.to_string())),
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            let line = pos.as_ref().map_or(0, |p| p.line());
            // The first column the row lacks, or the first one it has too many.
            let index = (*len).min(*expected_len) as usize;
            data(
                line,
                column_label(headers, index),
                format!("malformed row: {len} fields where the header has {expected_len}"),
            )
        }
        csv::ErrorKind::Utf8 { pos, err } => data(
            pos.as_ref().map_or(0, |p| p.line()),
            column_label(headers, err.field()),
            "not valid UTF-8".to_string(),
        ),
        _ => data(0, "(unknown)".to_string(), error.to_string()),
    }
}

/// serde helpers for the spellings found in the published data files.
pub mod de {
    use super::*;

    /// A boolean written `True`/`False` (pandas), `true`/`false` or `1`/`0`.
    pub fn py_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            "True" | "true" | "TRUE" | "1" => Ok(true),
            "False" | "false" | "FALSE" | "0" => Ok(false),
            other => Err(serde::de::Error::custom(format!(
                "`{other}` is not a boolean (expected True or False)"
            ))),
        }
    }

    /// True for the spellings pandas and Python leave for a missing value: the empty
    /// string, `nan`, `None`.
    pub fn is_missing(s: &str) -> bool {
        matches!(s.trim(), "" | "nan" | "NaN" | "None")
    }

    /// Text that may be missing (empty, `nan`, `None` → `None`); kept verbatim otherwise.
    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let s = String::deserialize(d)?;
        Ok(if is_missing(&s) { None } else { Some(s) })
    }

    /// A number that may be missing (empty, `nan`, `None` → `None`).
    pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let s = String::deserialize(d)?;
        if is_missing(&s) {
            return Ok(None);
        }
        s.trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a number")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct R {
        a: u32,
        #[serde(deserialize_with = "de::py_bool")]
        b: bool,
        #[serde(deserialize_with = "de::opt_text")]
        c: Option<String>,
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_rows_with_lines_and_multiline_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a,b,c,extra\n1,True,\"two\nlines\",x\n2,False,nan,y\n");
        let table = CsvTable::read(&path, &["a", "b", "c"]).unwrap();
        let rows: Vec<Row<R>> = table.rows().collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].value.a, 1);
        assert_eq!(rows[0].value.c.as_deref(), Some("two\nlines"));
        assert_eq!(rows[1].line, 4);
        assert!(!rows[1].value.b);
        assert_eq!(rows[1].value.c, None);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a,b,c\n1,True,x\nzz,True,x\n");
        let table = CsvTable::read(&path, &["a"]).unwrap();
        let err = table.rows::<R>().nth(1).unwrap().unwrap_err().to_string();
        assert!(
            err.contains("t.csv") && err.contains("line 3") && err.contains("`a` (#1)"),
            "{err}"
        );

        let path = write(&dir, "a,b\n1,True\n");
        let err = CsvTable::read(&path, &["a", "b", "c"]).unwrap_err().to_string();
        assert!(err.contains("line 1, column `c`: missing"), "{err}");

        let path = write(&dir, "a,b,c\n1,True,x\n2,True\n");
        let err = CsvTable::read(&path, &["a"]).unwrap_err().to_string();
        assert!(err.contains("line 3, column `c` (#3): malformed row: 2 fields"), "{err}");

        let missing = dir.path().join("nope.csv");
        let err = CsvTable::read(&missing, &["a"]).unwrap_err().to_string();
        assert!(err.contains("nope.csv"), "{err}");
    }
}
