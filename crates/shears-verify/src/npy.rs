//! NumPy `.npy` files: the header read on its own (dtype, shape) and rows along axis 0 read on
//! demand, so a dataset can be checked against a model before any payload is loaded and a large
//! stacked array is never held whole.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Result, VerifyError};

/// The element types a `.npy` file may hold here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpyType {
    F16,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl NpyType {
    fn parse(descr: &str) -> Option<(NpyType, bool)> {
        // The byte-order mark: '<' little, '>' big, '|' not applicable, '=' native.
        let (order, code) = descr.split_at(1.min(descr.len()));
        let big = match order {
            "<" | "|" => false,
            "=" => cfg!(target_endian = "big"),
            ">" => true,
            _ => return None,
        };
        let t = match code {
            "f2" => NpyType::F16,
            "f4" => NpyType::F32,
            "f8" => NpyType::F64,
            "i1" => NpyType::I8,
            "i2" => NpyType::I16,
            "i4" => NpyType::I32,
            "i8" => NpyType::I64,
            "u1" => NpyType::U8,
            "u2" => NpyType::U16,
            "u4" => NpyType::U32,
            "u8" => NpyType::U64,
            "b1" => NpyType::Bool,
            _ => return None,
        };
        Some((t, big))
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyType::I8 | NpyType::U8 | NpyType::Bool => 1,
            NpyType::F16 | NpyType::I16 | NpyType::U16 => 2,
            NpyType::F32 | NpyType::I32 | NpyType::U32 => 4,
            NpyType::F64 | NpyType::I64 | NpyType::U64 => 8,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, NpyType::F16 | NpyType::F32 | NpyType::F64)
    }

    /// The ONNX `TensorProto.DataType` with the same elements.
    pub fn onnx(self) -> i32 {
        match self {
            NpyType::F32 => 1,
            NpyType::U8 => 2,
            NpyType::I8 => 3,
            NpyType::U16 => 4,
            NpyType::I16 => 5,
            NpyType::I32 => 6,
            NpyType::I64 => 7,
            NpyType::Bool => 9,
            NpyType::F16 => 10,
            NpyType::F64 => 11,
            NpyType::U32 => 12,
            NpyType::U64 => 13,
        }
    }

    /// The type with the same elements as ONNX type `onnx`, if any.
    pub fn from_onnx(onnx: i32) -> Option<NpyType> {
        use NpyType as T;
        [
            T::F16,
            T::F32,
            T::F64,
            T::I8,
            T::I16,
            T::I32,
            T::I64,
            T::U8,
            T::U16,
            T::U32,
            T::U64,
            T::Bool,
        ]
        .into_iter()
        .find(|t| t.onnx() == onnx)
    }

    /// The numpy name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            NpyType::F16 => "float16",
            NpyType::F32 => "float32",
            NpyType::F64 => "float64",
            NpyType::I8 => "int8",
            NpyType::I16 => "int16",
            NpyType::I32 => "int32",
            NpyType::I64 => "int64",
            NpyType::U8 => "uint8",
            NpyType::U16 => "uint16",
            NpyType::U32 => "uint32",
            NpyType::U64 => "uint64",
            NpyType::Bool => "bool",
        }
    }
}

/// Values read from a `.npy` file, widened to what the evaluator computes in.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyValues {
    /// Floating-point files.
    F32(Vec<f32>),
    /// Integer and boolean files.
    I64(Vec<i64>),
}

/// An opened `.npy` file: its header, parsed and checked; the payload is not read.
///
/// Invariants: C order; the file is long enough for `shape` (checked on open); `offset` is the
/// payload's first byte.
#[derive(Clone, Debug)]
pub struct NpyArray {
    pub path: PathBuf,
    pub dtype: NpyType,
    pub shape: Vec<usize>,
    big_endian: bool,
    offset: u64,
}

fn npy_error(path: &Path, reason: impl Into<String>) -> VerifyError {
    VerifyError::Data {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl NpyArray {
    /// Reads and checks the header of `path`.
    pub fn open(path: &Path) -> Result<NpyArray> {
        let err = |r: String| npy_error(path, r);
        let mut f = File::open(path).map_err(|e| err(e.to_string()))?;
        let mut head = [0u8; 10];
        f.read_exact(&mut head)
            .map_err(|_| err("not a .npy file (too short)".into()))?;
        if &head[..6] != b"\x93NUMPY" {
            return Err(err("not a .npy file (no NUMPY magic)".into()));
        }
        let (header_len, start) = match head[6] {
            1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10u64),
            2 | 3 => {
                let mut more = [0u8; 2];
                f.read_exact(&mut more)
                    .map_err(|_| err("truncated .npy header".into()))?;
                let n = u32::from_le_bytes([head[8], head[9], more[0], more[1]]);
                (n as usize, 12u64)
            }
            v => return Err(err(format!("unsupported .npy version {v}"))),
        };
        if header_len > 1 << 20 {
            return Err(err("the .npy header is implausibly long".into()));
        }
        let mut header = vec![0u8; header_len];
        f.read_exact(&mut header)
            .map_err(|_| err("truncated .npy header".into()))?;
        let header = String::from_utf8_lossy(&header);
        let descr = dict_value(&header, "descr")
            .ok_or_else(|| err("the .npy header has no 'descr'".into()))?;
        let descr = descr.trim().trim_matches(['\'', '"']);
        let (dtype, big_endian) = NpyType::parse(descr).ok_or_else(|| {
            err(format!(
                "unsupported dtype '{descr}' (numeric and bool arrays only)"
            ))
        })?;
        let fortran = dict_value(&header, "fortran_order")
            .ok_or_else(|| err("the .npy header has no 'fortran_order'".into()))?;
        if fortran.trim() != "False" {
            return Err(err(
                "Fortran-ordered array (save it with numpy.ascontiguousarray)".into(),
            ));
        }
        let shape_text = dict_value(&header, "shape")
            .ok_or_else(|| err("the .npy header has no 'shape'".into()))?;
        let shape = parse_shape(shape_text)
            .ok_or_else(|| err(format!("bad shape {shape_text} in the .npy header")))?;
        let offset = start + header_len as u64;
        let elements = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| err("the array is too large".into()))?;
        let len = f.metadata().map_err(|e| err(e.to_string()))?.len();
        if len < offset + elements as u64 {
            return Err(err(format!(
                "truncated: shape {shape:?} of {} needs {elements} bytes of data, the file has {}",
                dtype.name(),
                len.saturating_sub(offset)
            )));
        }
        Ok(NpyArray {
            path: path.to_path_buf(),
            dtype,
            shape,
            big_endian,
            offset,
        })
    }

    /// Elements in one row (the product of every axis after the first); 1 for a scalar.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Reads rows `start..end` along axis 0 (the whole array for a scalar: `0..1`).
    pub fn read_rows(&self, start: usize, end: usize) -> Result<NpyValues> {
        let row = if self.shape.is_empty() {
            1
        } else {
            self.row_len()
        };
        self.read_elements(start * row, (end - start) * row)
    }

    /// Reads `count` elements from element `first` on (in C order).
    pub fn read_elements(&self, first: usize, count: usize) -> Result<NpyValues> {
        let err = |r: String| npy_error(&self.path, r);
        let size = self.dtype.size();
        let mut f = File::open(&self.path).map_err(|e| err(e.to_string()))?;
        f.seek(SeekFrom::Start(self.offset + (first * size) as u64))
            .map_err(|e| err(e.to_string()))?;
        let mut bytes = vec![0u8; count * size];
        f.read_exact(&mut bytes).map_err(|e| err(e.to_string()))?;
        if self.big_endian && size > 1 {
            for c in bytes.chunks_exact_mut(size) {
                c.reverse();
            }
        }
        Ok(decode(self.dtype, &bytes))
    }

    /// Reads the whole array.
    pub fn read_all(&self) -> Result<NpyValues> {
        let rows = self.shape.first().copied().unwrap_or(1);
        self.read_rows(0, rows)
    }
}

fn decode(dtype: NpyType, b: &[u8]) -> NpyValues {
    macro_rules! ints {
        ($t:ty, $n:expr) => {
            NpyValues::I64(
                b.chunks_exact($n)
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $n])) as i64)
                    .collect(),
            )
        };
    }
    match dtype {
        NpyType::F16 => NpyValues::F32(
            b.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        NpyType::F32 => NpyValues::F32(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        NpyType::F64 => NpyValues::F32(
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
        ),
        NpyType::I8 => ints!(i8, 1),
        NpyType::I16 => ints!(i16, 2),
        NpyType::I32 => ints!(i32, 4),
        NpyType::I64 => ints!(i64, 8),
        NpyType::U8 | NpyType::Bool => ints!(u8, 1),
        NpyType::U16 => ints!(u16, 2),
        NpyType::U32 => ints!(u32, 4),
        // Wraps past i64::MAX, as ONNX has no wider integer the evaluator computes in.
        NpyType::U64 => ints!(u64, 8),
    }
}

/// The text of `key`'s value in the header's Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        rest[1..].find(q)? + 2
    } else {
        rest.find([',', '}'])?
    };
    Some(&rest[..end])
}

fn parse_shape(s: &str) -> Option<Vec<usize>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_end_matches('L').parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a version-1 `.npy` file by hand (the format, not a library, is under test).
    pub(crate) fn write(path: &Path, descr: &str, shape: &[usize], payload: &[u8]) {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(payload);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn reads_headers_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let v: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
        write(&p, "<f4", &[3, 2, 2], &v);
        let a = NpyArray::open(&p).unwrap();
        assert_eq!(
            (a.dtype, a.shape.clone(), a.row_len()),
            (NpyType::F32, vec![3, 2, 2], 4)
        );
        assert_eq!(
            a.read_rows(1, 3).unwrap(),
            NpyValues::F32((4..12).map(|i| i as f32).collect())
        );
        let p = dir.path().join("b.npy");
        let v: Vec<u8> = [1i32, -2, 3].iter().flat_map(|i| i.to_be_bytes()).collect();
        write(&p, ">i4", &[3], &v);
        let b = NpyArray::open(&p).unwrap();
        assert_eq!(b.read_all().unwrap(), NpyValues::I64(vec![1, -2, 3]));
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        type Make = Box<dyn Fn(&Path)>;
        let cases: [(&str, Make, &str); 4] = [
            (
                "short.npy",
                Box::new(|p| write(p, "<f4", &[4], &[0; 8])),
                "truncated",
            ),
            (
                "str.npy",
                Box::new(|p| write(p, "<U3", &[1], &[0; 12])),
                "unsupported dtype",
            ),
            (
                "junk.npy",
                Box::new(|p| std::fs::write(p, b"hello world!").unwrap()),
                "magic",
            ),
            (
                "f.npy",
                Box::new(|p| {
                    write(p, "<f4", &[1], &[0; 4]);
                    let mut b = std::fs::read(p).unwrap();
                    let at = b.windows(5).position(|w| w == b"False").unwrap();
                    b[at..at + 5].copy_from_slice(b"True ");
                    std::fs::write(p, b).unwrap();
                }),
                "Fortran",
            ),
        ];
        for (name, make, want) in cases {
            let p = dir.path().join(name);
            make(&p);
            let e = NpyArray::open(&p).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(want), "{e}");
        }
    }
}
