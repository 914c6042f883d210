//! A reader for GGUF files (versions 2 and 3): header, metadata and tensor infos are parsed
//! on open; tensor data is read from the file only when a tensor is asked for.
//!
//! Every length and offset read from the file is checked against the file's size before
//! anything is allocated or read, so a truncated or corrupt file yields an
//! [`ImportError`] naming the file and the part that is cut off, never a panic or a huge
//! allocation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::dequant::{dequantize, GgmlType};
use crate::error::ImportError;

const GGUF_MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;
/// Arrays of arrays are legal but never deep in practice; the limit keeps a crafted file
/// from overflowing the stack.
const MAX_ARRAY_NESTING: u32 = 8;
/// A length or count that runs past the end of the file is read as a cut-off file when it
/// is plausible, and as a corrupt field when it is above these: no real GGUF has a string
/// of 16 MiB (chat templates are kilobytes), an array of 2^28 items (vocabularies are
/// ~2^18), or 2^24 metadata entries or tensors.
const PLAUSIBLE_STRING_LEN: u64 = 1 << 24;
const PLAUSIBLE_ARRAY_LEN: u64 = 1 << 28;
const PLAUSIBLE_ENTRY_COUNT: u64 = 1 << 24;

/// A dense `f32` tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first (PyTorch order: a linear weight is `[out, in]`).
    pub shape: Vec<usize>,
    /// The elements, row-major; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
}

impl Tensor {
    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }
}

/// One metadata value. Arrays hold values of a single type (possibly nested arrays).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// The GGUF type name of the value (`u32`, `string`, `array`, ...), for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "u8",
            MetaValue::I8(_) => "i8",
            MetaValue::U16(_) => "u16",
            MetaValue::I16(_) => "i16",
            MetaValue::U32(_) => "u32",
            MetaValue::I32(_) => "i32",
            MetaValue::U64(_) => "u64",
            MetaValue::I64(_) => "i64",
            MetaValue::F32(_) => "f32",
            MetaValue::F64(_) => "f64",
            MetaValue::Bool(_) => "bool",
            MetaValue::String(_) => "string",
            MetaValue::Array(_) => "array",
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any integer type as `i64` (`None` for a `u64` above `i64::MAX` and for non-integers).
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => i64::try_from(v).ok()?,
            MetaValue::I64(v) => v,
            _ => return None,
        })
    }

    /// Any non-negative integer as `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U64(v) => Some(v),
            _ => u64::try_from(self.as_i64()?).ok(),
        }
    }

    /// A float (`f32`, or `f64` rounded to `f32`).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            MetaValue::F32(v) => Some(v),
            MetaValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// A float as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The boolean, if this is a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// Where and how one tensor is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The tensor name (e.g. `blk.0.attn_q.weight`).
    pub name: String,
    /// The element type.
    pub ggml_type: GgmlType,
    /// Dimensions in GGUF order: innermost (contiguous) first, e.g. `[in, out]` for a
    /// linear weight. [`TensorInfo::shape`] gives the row-major order.
    pub dims: Vec<u64>,
    /// Offset of the data from the start of the file's data section.
    pub offset: u64,
}

impl TensorInfo {
    /// The row-major shape (GGUF dims reversed): `[out_features, in_features]` for a
    /// linear weight.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// The number of elements (checked against overflow when the file was opened).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The number of bytes of data, or `None` for a type of unknown layout.
    pub fn n_bytes(&self) -> Option<u64> {
        self.ggml_type.data_size(self.n_elements())
    }
}

/// An open GGUF file: parsed header, metadata and tensor infos, plus the open file handle
/// from which tensor data is read on demand.
pub struct GgufFile {
    path: PathBuf,
    file: File,
    file_len: u64,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: BTreeMap<String, MetaValue>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    // The metadata holds whole vocabularies: print a summary instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Sequential reader over the header that knows the file size, so every read is checked
/// before it happens and a short file is reported with what was being read.
struct HeaderReader<'a> {
    inner: BufReader<&'a File>,
    path: &'a Path,
    pos: u64,
    len: u64,
    /// What is being read now, for truncation messages.
    what: String,
}

impl HeaderReader<'_> {
    fn truncated(&self) -> ImportError {
        ImportError::Truncated {
            path: self.path.to_path_buf(),
            what: self.what.clone(),
            offset: self.pos,
        }
    }

    fn format(&self, reason: String) -> ImportError {
        ImportError::Format { path: self.path.to_path_buf(), format: "GGUF", reason }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// A `field` (read at byte offset `at`) whose `value` needs `needed` bytes, more than
    /// the file has left: the file is cut off if the value is plausible (at most
    /// `plausible`), else the field itself is corrupt. Telling them apart matters: a
    /// re-download fixes the first, while the second means the file was damaged or
    /// written wrongly.
    fn past_the_end(
        &self,
        field: &str,
        at: u64,
        value: u64,
        needed: u64,
        plausible: u64,
    ) -> ImportError {
        if value <= plausible {
            return self.truncated();
        }
        self.format(format!(
            "{}: the {field} at byte offset {at} is {value}, an implausible value (it needs at \
             least {needed} bytes, and only {} of the file's {} bytes are left): the file is \
             corrupt, not cut off",
            self.what,
            self.remaining(),
            self.len
        ))
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), ImportError> {
        if (buf.len() as u64) > self.remaining() {
            return Err(self.truncated());
        }
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.truncated()
            } else {
                ImportError::io(self.path, e)
            }
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ImportError> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, ImportError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ImportError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ImportError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ImportError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, ImportError> {
        let at = self.pos;
        let len = self.u64()?;
        if len > self.remaining() {
            return Err(self.past_the_end("string length", at, len, len, PLAUSIBLE_STRING_LEN));
        }
        let mut buf = vec![0u8; len as usize];
        self.fill(&mut buf)?;
        String::from_utf8(buf).map_err(|_| self.format(format!("{} is not valid UTF-8", self.what)))
    }

    fn value(&mut self, type_id: u32, depth: u32) -> Result<MetaValue, ImportError> {
        Ok(match type_id {
            0 => MetaValue::U8(self.u8()?),
            1 => MetaValue::I8(self.u8()? as i8),
            2 => MetaValue::U16(self.u16()?),
            3 => MetaValue::I16(self.u16()? as i16),
            4 => MetaValue::U32(self.u32()?),
            5 => MetaValue::I32(self.u32()? as i32),
            6 => MetaValue::F32(f32::from_bits(self.u32()?)),
            7 => MetaValue::Bool(self.u8()? != 0),
            8 => MetaValue::String(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_NESTING {
                    return Err(self.format(format!("{}: arrays nested too deeply", self.what)));
                }
                let elem_type = self.u32()?;
                let at = self.pos;
                let count = self.u64()?;
                let min_size = match elem_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10 | 11 | 12 => 8,
                    9 => 12,
                    other => {
                        return Err(self
                            .format(format!("{}: unknown array element type {other}", self.what)))
                    }
                };
                // Refuse counts the rest of the file cannot hold before allocating.
                let needed = count.saturating_mul(min_size);
                if needed > self.remaining() {
                    return Err(self.past_the_end(
                        "array length",
                        at,
                        count,
                        needed,
                        PLAUSIBLE_ARRAY_LEN,
                    ));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem_type, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64()?),
            11 => MetaValue::I64(self.u64()? as i64),
            12 => MetaValue::F64(f64::from_bits(self.u64()?)),
            other => return Err(self.format(format!("{}: unknown value type {other}", self.what))),
        })
    }
}

impl GgufFile {
    /// Opens and parses a GGUF file (header, metadata, tensor infos) and checks that every
    /// tensor's data lies inside the file. Tensor data is not read.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, ImportError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| ImportError::io(path, e))?.len();
        let mut r = HeaderReader {
            inner: BufReader::with_capacity(1 << 20, &file),
            path,
            pos: 0,
            len: file_len,
            what: "the header".to_string(),
        };

        let magic: [u8; 4] = r.array()?;
        if &magic != GGUF_MAGIC {
            return Err(r.format(format!(
                "does not start with the GGUF magic (found bytes {magic:02x?}); is this a GGUF file?"
            )));
        }
        let version = r.u32()?;
        if version != 2 && version != 3 {
            return Err(r.format(format!("GGUF version {version} is not supported (only 2 and 3)")));
        }
        let n_tensors = r.u64()?;
        let n_kv = r.u64()?;
        // Each metadata entry takes at least 13 bytes (key length, type, one byte of value)
        // and each tensor info 24; a count the rest of the file cannot hold is either cut
        // off (reported by the reads below, which say where) or corrupt.
        for (field, at, count, each) in
            [("tensor count", 8, n_tensors, 24u64), ("metadata entry count", 16, n_kv, 13)]
        {
            let needed = count.saturating_mul(each);
            if needed > r.remaining() && count > PLAUSIBLE_ENTRY_COUNT {
                return Err(r.past_the_end(field, at, count, needed, PLAUSIBLE_ENTRY_COUNT));
            }
        }

        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            r.what = format!("the key of metadata entry #{i}");
            let key = r.string()?;
            r.what = format!("metadata key \"{key}\"");
            let type_id = r.u32()?;
            let value = r.value(type_id, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(r.format(format!("metadata key \"{key}\" appears twice")));
            }
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a.is_power_of_two() => a,
                _ => {
                    return Err(ImportError::BadMetadata {
                        path: path.to_path_buf(),
                        key: "general.alignment".into(),
                        reason: format!("expected a power of two, found {v:?}"),
                    })
                }
            },
        };

        // Each tensor info takes at least 24 bytes: a corrupt count cannot reserve more than
        // the file could hold, and the reads below report exactly where it ends.
        let capacity = n_tensors.min(r.remaining() / 24) as usize;
        let mut tensors = Vec::with_capacity(capacity);
        let mut by_name = HashMap::with_capacity(capacity);
        for i in 0..n_tensors {
            r.what = format!("the name of tensor info #{i}");
            let name = r.string()?;
            r.what = format!("the info of tensor \"{name}\"");
            let n_dims = r.u32()?;
            if n_dims > MAX_DIMS {
                return Err(r.format(format!(
                    "tensor \"{name}\" has {n_dims} dimensions (at most {MAX_DIMS})"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64()?);
            }
            let ggml_type = GgmlType::from_id(r.u32()?);
            let offset = r.u64()?;
            if dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).is_none() {
                return Err(r.format(format!("tensor \"{name}\" has an impossible shape {dims:?}")));
            }
            if offset % alignment != 0 {
                return Err(r.format(format!(
                    "tensor \"{name}\" data offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            if by_name.insert(name.clone(), tensors.len()).is_some() {
                return Err(r.format(format!("tensor \"{name}\" appears twice")));
            }
            tensors.push(TensorInfo { name, ggml_type, dims, offset });
        }
        let data_offset = r.pos.div_ceil(alignment) * alignment;

        let gguf = GgufFile {
            path: path.to_path_buf(),
            file_len,
            version,
            alignment,
            data_offset,
            metadata,
            tensors,
            by_name,
            file,
        };
        gguf.check_tensor_extents()?;
        Ok(gguf)
    }

    /// Checks that every tensor's data fits in the file; reports the tensor whose data
    /// starts first among those cut off (where the file ends).
    fn check_tensor_extents(&self) -> Result<(), ImportError> {
        let mut first_cut: Option<&TensorInfo> = None;
        for t in &self.tensors {
            let n_elements = t.n_elements();
            let Some(bytes) = t.ggml_type.data_size(n_elements) else {
                if t.ggml_type.block_layout().is_some() {
                    return Err(ImportError::Format {
                        path: self.path.clone(),
                        format: "GGUF",
                        reason: format!(
                            "tensor \"{}\" has {n_elements} elements, not a whole number of {} blocks",
                            t.name,
                            t.ggml_type.name()
                        ),
                    });
                }
                // Unknown type: size unknown; tensor_f32 reports it as unsupported.
                continue;
            };
            let end = self.data_offset.checked_add(t.offset).and_then(|s| s.checked_add(bytes));
            if end.is_none_or(|e| e > self.file_len)
                && first_cut.is_none_or(|c| t.offset < c.offset)
            {
                first_cut = Some(t);
            }
        }
        match first_cut {
            None => Ok(()),
            Some(t) => Err(ImportError::Truncated {
                path: self.path.clone(),
                what: format!("the data of tensor \"{}\"", t.name),
                offset: self.file_len,
            }),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata, by key.
    pub fn metadata(&self) -> &BTreeMap<String, MetaValue> {
        &self.metadata
    }

    /// One metadata value, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    fn require(&self, key: &str) -> Result<&MetaValue, ImportError> {
        self.metadata.get(key).ok_or_else(|| ImportError::MissingMetadata {
            path: self.path.clone(),
            key: key.to_string(),
        })
    }

    fn bad(&self, key: &str, expected: &str, found: &MetaValue) -> ImportError {
        let found = match found {
            MetaValue::Array(items) => format!("an array of {}", items.len()),
            other => format!("{} {:?}", other.type_name(), other),
        };
        ImportError::BadMetadata {
            path: self.path.clone(),
            key: key.to_string(),
            reason: format!("expected {expected}, found {found}"),
        }
    }

    /// A required string value.
    pub fn get_str(&self, key: &str) -> Result<&str, ImportError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.bad(key, "a string", v))
    }

    /// A required non-negative integer value (any integer type).
    pub fn get_u64(&self, key: &str) -> Result<u64, ImportError> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| self.bad(key, "a non-negative integer", v))
    }

    /// A required integer value (any integer type).
    pub fn get_i64(&self, key: &str) -> Result<i64, ImportError> {
        let v = self.require(key)?;
        v.as_i64().ok_or_else(|| self.bad(key, "an integer", v))
    }

    /// A required float value (`f32` or `f64`).
    pub fn get_f32(&self, key: &str) -> Result<f32, ImportError> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| self.bad(key, "a float", v))
    }

    /// A required boolean value.
    pub fn get_bool(&self, key: &str) -> Result<bool, ImportError> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| self.bad(key, "a bool", v))
    }

    /// A required array value.
    pub fn get_array(&self, key: &str) -> Result<&[MetaValue], ImportError> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.bad(key, "an array", v))
    }

    /// A required array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>, ImportError> {
        self.typed_array(key, "an array of strings", MetaValue::as_str)
    }

    /// A required array of floats.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, ImportError> {
        self.typed_array(key, "an array of floats", MetaValue::as_f32)
    }

    /// A required array of integers.
    pub fn get_i64_array(&self, key: &str) -> Result<Vec<i64>, ImportError> {
        self.typed_array(key, "an array of integers", MetaValue::as_i64)
    }

    fn typed_array<'a, T>(
        &'a self,
        key: &str,
        expected: &str,
        f: impl Fn(&'a MetaValue) -> Option<T>,
    ) -> Result<Vec<T>, ImportError> {
        let items = self.get_array(key)?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                f(v).ok_or_else(|| ImportError::BadMetadata {
                    path: self.path.clone(),
                    key: key.to_string(),
                    reason: format!("expected {expected}, element {i} is a {}", v.type_name()),
                })
            })
            .collect()
    }

    /// An optional string: `Ok(None)` when absent, an error when of another type.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, ImportError> {
        self.metadata.get(key).map(|_| self.get_str(key)).transpose()
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, ImportError> {
        self.metadata.get(key).map(|_| self.get_u64(key)).transpose()
    }

    /// An optional float.
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>, ImportError> {
        self.metadata.get(key).map(|_| self.get_f32(key)).transpose()
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ImportError> {
        self.metadata.get(key).map(|_| self.get_bool(key)).transpose()
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of one tensor, if present.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    fn require_tensor(&self, name: &str) -> Result<&TensorInfo, ImportError> {
        self.tensor_info(name).ok_or_else(|| ImportError::MissingTensor {
            path: self.path.clone(),
            tensor: name.to_string(),
        })
    }

    /// The raw stored bytes of a tensor (for types [`tensor_f32`](Self::tensor_f32) cannot
    /// convert, or to hash the source).
    pub fn tensor_bytes(&self, name: &str) -> Result<Vec<u8>, ImportError> {
        let info = self.require_tensor(name)?;
        let n = info.n_bytes().ok_or_else(|| ImportError::UnsupportedQuantization {
            path: self.path.clone(),
            tensor: name.to_string(),
            type_name: info.ggml_type.name(),
        })?;
        let start = self.data_offset + info.offset;
        let mut buf = vec![0u8; n as usize];
        read_exact_at(&self.file, &mut buf, start).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                // The size was checked on open, so the file shrank since.
                ImportError::Truncated {
                    path: self.path.clone(),
                    what: format!(
                        "the data of tensor \"{name}\" (the file changed after it was opened)"
                    ),
                    offset: start,
                }
            } else {
                ImportError::io(&self.path, e)
            }
        })?;
        Ok(buf)
    }

    /// Reads a tensor and dequantizes it to `f32`, with a row-major shape (GGUF dims
    /// reversed). Fails with [`ImportError::UnsupportedQuantization`] for types other than
    /// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q5_K, Q6_K.
    pub fn tensor_f32(&self, name: &str) -> Result<Tensor, ImportError> {
        let info = self.require_tensor(name)?;
        if !info.ggml_type.is_supported() {
            return Err(ImportError::UnsupportedQuantization {
                path: self.path.clone(),
                tensor: name.to_string(),
                type_name: info.ggml_type.name(),
            });
        }
        let bytes = self.tensor_bytes(name)?;
        let mut data = vec![0f32; info.n_elements() as usize];
        dequantize(name, info.ggml_type, &bytes, &mut data)?;
        Ok(Tensor { shape: info.shape(), data })
    }
}

/// Positional read of exactly `buf.len()` bytes (thread-safe: no shared cursor); also used
/// by the safetensors reader.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(crate) fn read_exact_at(
    file: &File,
    mut buf: &mut [u8],
    mut offset: u64,
) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes GGUF files for tests.
    #[derive(Default)]
    pub(crate) struct Builder {
        kv: Vec<(String, u32, Vec<u8>)>,
        tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    }

    fn gguf_string(s: &str) -> Vec<u8> {
        let mut b = (s.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        b
    }

    impl Builder {
        pub(crate) fn kv(mut self, key: &str, type_id: u32, value: Vec<u8>) -> Self {
            self.kv.push((key.into(), type_id, value));
            self
        }
        pub(crate) fn string(self, key: &str, v: &str) -> Self {
            self.kv(key, 8, gguf_string(v))
        }
        pub(crate) fn u32(self, key: &str, v: u32) -> Self {
            self.kv(key, 4, v.to_le_bytes().to_vec())
        }
        pub(crate) fn str_array(self, key: &str, items: &[&str]) -> Self {
            let mut b = 8u32.to_le_bytes().to_vec();
            b.extend((items.len() as u64).to_le_bytes());
            for s in items {
                b.extend(gguf_string(s));
            }
            self.kv(key, 9, b)
        }
        pub(crate) fn f32_array(self, key: &str, items: &[f32]) -> Self {
            let mut b = 6u32.to_le_bytes().to_vec();
            b.extend((items.len() as u64).to_le_bytes());
            for v in items {
                b.extend(v.to_le_bytes());
            }
            self.kv(key, 9, b)
        }
        pub(crate) fn i32_array(self, key: &str, items: &[i32]) -> Self {
            let mut b = 5u32.to_le_bytes().to_vec();
            b.extend((items.len() as u64).to_le_bytes());
            for v in items {
                b.extend(v.to_le_bytes());
            }
            self.kv(key, 9, b)
        }
        pub(crate) fn tensor(
            mut self,
            name: &str,
            dims: &[u64],
            type_id: u32,
            data: Vec<u8>,
        ) -> Self {
            self.tensors.push((name.into(), dims.to_vec(), type_id, data));
            self
        }
        pub(crate) fn bytes(&self) -> Vec<u8> {
            let mut b = b"GGUF".to_vec();
            b.extend(3u32.to_le_bytes());
            b.extend((self.tensors.len() as u64).to_le_bytes());
            b.extend((self.kv.len() as u64).to_le_bytes());
            for (k, t, v) in &self.kv {
                b.extend(gguf_string(k));
                b.extend(t.to_le_bytes());
                b.extend(v);
            }
            let mut data = Vec::new();
            for (name, dims, t, d) in &self.tensors {
                // Pad between tensors only, so every byte of the file is needed.
                while !data.len().is_multiple_of(32) {
                    data.push(0);
                }
                b.extend(gguf_string(name));
                b.extend((dims.len() as u32).to_le_bytes());
                for x in dims {
                    b.extend(x.to_le_bytes());
                }
                b.extend(t.to_le_bytes());
                b.extend((data.len() as u64).to_le_bytes());
                data.extend(d);
            }
            while !b.len().is_multiple_of(32) {
                b.push(0);
            }
            b.extend(data);
            b
        }
        pub(crate) fn write(&self, dir: &Path, name: &str) -> PathBuf {
            let p = dir.join(name);
            std::fs::write(&p, self.bytes()).expect("write test gguf");
            p
        }
    }

    fn sample() -> Builder {
        let f32s: Vec<u8> =
            [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut q8 = half::f16::from_f32(0.5).to_bits().to_le_bytes().to_vec();
        q8.extend((0..32).map(|i| i as u8));
        Builder::default()
            .string("general.architecture", "llama")
            .u32("llama.block_count", 2)
            .kv("llama.rope.freq_base", 6, 10000f32.to_le_bytes().to_vec())
            .kv("flag", 7, vec![1])
            .kv("small", 1, vec![0xFF])
            .kv("big", 10, u64::MAX.to_le_bytes().to_vec())
            .kv("neg", 11, (-5i64).to_le_bytes().to_vec())
            .kv("pi", 12, std::f64::consts::PI.to_le_bytes().to_vec())
            .kv("u16", 2, 7u16.to_le_bytes().to_vec())
            .kv("i16", 3, (-7i16).to_le_bytes().to_vec())
            .kv("i32", 5, (-9i32).to_le_bytes().to_vec())
            .kv("u8", 0, vec![200])
            .str_array("tokenizer.ggml.tokens", &["a", "b", "ab"])
            .f32_array("tokenizer.ggml.scores", &[0.0, -1.0, -0.5])
            .i32_array("tokenizer.ggml.token_type", &[1, 1, 3])
            .kv("nested", 9, {
                // array of 2 arrays of u8: [[1, 2], [3]]
                let mut b = 9u32.to_le_bytes().to_vec();
                b.extend(2u64.to_le_bytes());
                for inner in [&[1u8, 2][..], &[3u8][..]] {
                    b.extend(0u32.to_le_bytes());
                    b.extend((inner.len() as u64).to_le_bytes());
                    b.extend(inner);
                }
                b
            })
            // GGUF dims are innermost first: [3, 2] is 2 rows of 3.
            .tensor("w", &[3, 2], 0, f32s)
            .tensor("q", &[32], 8, q8)
    }

    #[test]
    fn parses_metadata_and_tensors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = sample().write(dir.path(), "m.gguf");
        let g = GgufFile::open(&p).expect("open");
        assert_eq!(g.version(), 3);
        assert_eq!(g.get_str("general.architecture").expect("arch"), "llama");
        assert_eq!(g.get_u64("llama.block_count").expect("u64"), 2);
        assert_eq!(g.get_f32("llama.rope.freq_base").expect("f32"), 10000.0);
        assert!(g.get_bool("flag").expect("bool"));
        assert_eq!(g.get_i64("small").expect("i8"), -1);
        assert_eq!(g.get_u64("big").expect("u64"), u64::MAX);
        assert_eq!(g.get_i64("neg").expect("i64"), -5);
        assert!(g.get_u64("neg").is_err());
        assert_eq!(g.get("pi"), Some(&MetaValue::F64(std::f64::consts::PI)));
        assert_eq!(g.get_u64("u16").expect("u16"), 7);
        assert_eq!(g.get_i64("i16").expect("i16"), -7);
        assert_eq!(g.get_i64("i32").expect("i32"), -9);
        assert_eq!(g.get_u64("u8").expect("u8"), 200);
        assert_eq!(g.get_str_array("tokenizer.ggml.tokens").expect("tokens"), ["a", "b", "ab"]);
        assert_eq!(g.get_f32_array("tokenizer.ggml.scores").expect("scores"), [0.0, -1.0, -0.5]);
        assert_eq!(g.get_i64_array("tokenizer.ggml.token_type").expect("types"), [1, 1, 3]);
        let nested = g.get_array("nested").expect("nested");
        assert_eq!(nested[0], MetaValue::Array(vec![MetaValue::U8(1), MetaValue::U8(2)]));
        assert_eq!(g.opt_str("missing").expect("opt"), None);
        assert!(g.opt_str("llama.block_count").is_err());

        let missing = g.get_str("nope").unwrap_err().to_string();
        assert!(missing.contains("nope") && missing.contains("m.gguf"), "{missing}");
        let wrong = g.get_str("llama.block_count").unwrap_err().to_string();
        assert!(wrong.contains("llama.block_count") && wrong.contains("u32"), "{wrong}");

        assert_eq!(g.tensors().len(), 2);
        let w = g.tensor_f32("w").expect("w");
        assert_eq!(w.shape, [2, 3]);
        assert_eq!(w.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let q = g.tensor_f32("q").expect("q");
        assert_eq!(q.shape, [32]);
        assert_eq!(q.data[3], 1.5);
        let err = g.tensor_f32("nope").unwrap_err().to_string();
        assert!(err.contains("\"nope\" not found"), "{err}");
    }

    #[test]
    fn every_truncation_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = sample().bytes();
        let p = dir.path().join("cut.gguf");
        let mut saw_key = false;
        let mut saw_tensor_info = false;
        let mut saw_tensor_data = false;
        for len in 0..bytes.len() {
            std::fs::write(&p, &bytes[..len]).expect("write");
            let err = GgufFile::open(&p).expect_err("a cut file must not open");
            let msg = err.to_string();
            assert!(msg.contains("cut.gguf"), "no path in {msg}");
            match &err {
                ImportError::Truncated { what, .. } => {
                    saw_key |= what.contains("metadata key \"tokenizer.ggml.tokens\"");
                    saw_tensor_info |= what.contains("info of tensor \"w\"");
                    saw_tensor_data |= what.contains("data of tensor \"q\"");
                }
                // Cutting inside the padding before the data section leaves every tensor
                // starting past the end; still reported as truncation above. Nothing else
                // is acceptable.
                other => panic!("prefix of {len} bytes: unexpected error {other:?}"),
            }
        }
        assert!(saw_key && saw_tensor_info && saw_tensor_data);
    }

    #[test]
    fn corrupt_counts_do_not_allocate_or_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        // An array claiming 2^60 strings: a corrupt length, not a cut-off file.
        let mut b = 8u32.to_le_bytes().to_vec();
        b.extend((1u64 << 60).to_le_bytes());
        let p = Builder::default().kv("huge", 9, b).write(dir.path(), "a.gguf");
        let err = GgufFile::open(&p).unwrap_err().to_string();
        assert!(
            err.contains("a.gguf") && err.contains("array length") && err.contains("corrupt"),
            "{err}"
        );
        // A string claiming u64::MAX bytes.
        let p = Builder::default()
            .kv("s", 8, u64::MAX.to_le_bytes().to_vec())
            .write(dir.path(), "b.gguf");
        let err = GgufFile::open(&p).unwrap_err().to_string();
        assert!(
            err.contains("b.gguf") && err.contains("string length") && !err.contains("truncated"),
            "{err}"
        );
        // A bad value type, a bad magic, a bad version.
        let p = Builder::default().kv("s", 77, vec![]).write(dir.path(), "c.gguf");
        assert!(GgufFile::open(&p).unwrap_err().to_string().contains("unknown value type 77"));
        let mut bytes = sample().bytes();
        bytes[0] = b'X';
        std::fs::write(dir.path().join("d.gguf"), &bytes).expect("write");
        assert!(GgufFile::open(dir.path().join("d.gguf"))
            .unwrap_err()
            .to_string()
            .contains("magic"));
        let mut bytes = sample().bytes();
        bytes[4] = 9;
        std::fs::write(dir.path().join("e.gguf"), &bytes).expect("write");
        assert!(GgufFile::open(dir.path().join("e.gguf"))
            .unwrap_err()
            .to_string()
            .contains("version 9"));
        // A tensor of absurd size: reported as truncated data, not allocated.
        let p = Builder::default()
            .tensor("t", &[1 << 40, 1 << 20], 0, vec![])
            .write(dir.path(), "f.gguf");
        let err = GgufFile::open(&p).unwrap_err().to_string();
        assert!(err.contains("tensor \"t\""), "{err}");
        // A missing file.
        let err = GgufFile::open(dir.path().join("none.gguf")).unwrap_err();
        assert!(matches!(err, ImportError::Io { .. }));
    }

    /// A corrupt string length in an otherwise whole file names the field, its offset and
    /// the file, and does not call the file truncated; a plausible length that runs past
    /// the end of a cut-off file still does.
    #[test]
    fn a_corrupt_string_length_is_not_called_a_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = sample().bytes();
        // The length of the first key, "general.architecture", at byte 24 (after magic,
        // version and the two counts), with its top byte flipped.
        assert_eq!(u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes")), 20);
        bytes[31] = 0x40;
        let p = dir.path().join("corrupt.gguf");
        std::fs::write(&p, &bytes).expect("write");
        let err = GgufFile::open(&p).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ImportError::Format { .. }), "{msg}");
        assert!(
            msg.contains("corrupt.gguf")
                && msg.contains("string length")
                && msg.contains("byte offset 24"),
            "{msg}"
        );
        assert!(msg.contains("metadata entry #0") && !msg.contains("truncated"), "{msg}");
        // The same header cut inside the key: a truncation.
        let bytes = sample().bytes();
        std::fs::write(&p, &bytes[..35]).expect("write");
        assert!(matches!(GgufFile::open(&p), Err(ImportError::Truncated { .. })));
        // A corrupt tensor count.
        let mut bytes = sample().bytes();
        bytes[15] = 0x10;
        std::fs::write(&p, &bytes).expect("write");
        let msg = GgufFile::open(&p).unwrap_err().to_string();
        assert!(
            msg.contains("tensor count")
                && msg.contains("byte offset 8")
                && msg.contains("corrupt"),
            "{msg}"
        );
    }

    #[test]
    fn unsupported_type_is_reported_on_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        // IQ2_XS (17): 256 elements in 74 bytes.
        let p = Builder::default()
            .tensor("x", &[256], 17, vec![0; 74])
            .tensor("u", &[4], 200, vec![0; 4])
            .write(dir.path(), "u.gguf");
        let g = GgufFile::open(&p).expect("open");
        let err = g.tensor_f32("x").unwrap_err().to_string();
        assert!(err.contains("\"x\"") && err.contains("IQ2_XS"), "{err}");
        let err = g.tensor_f32("u").unwrap_err().to_string();
        assert!(err.contains("type 200"), "{err}");
    }
}
