//! Named tensors ↔ safetensors bytes (checkpoints, and snapshots on the wire),
//! and atomic file writes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, View};
use tch::{Device, Kind, Tensor};

/// A tensor set that cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum TensorIoError {
    #[error("tensor `{name}` has dtype {kind:?}, which safetensors files here do not carry")]
    UnsupportedKind { name: String, kind: Kind },
    #[error("tensor `{name}` has safetensors dtype {dtype:?}, which dmtl does not read")]
    UnsupportedDtype { name: String, dtype: Dtype },
    #[error("not a valid safetensors buffer: {0}")]
    Format(String),
}

struct CpuTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &CpuTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// The raw little-endian bytes of a tensor (copied to the CPU, made contiguous).
pub fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.to_device(Device::Cpu).contiguous();
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut bytes, numel);
    bytes
}

/// Encodes `tensors` with string `metadata` as one safetensors buffer.
pub fn encode(tensors: &BTreeMap<String, Tensor>, metadata: HashMap<String, String>) -> Result<Vec<u8>, TensorIoError> {
    let mut cpu = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let dtype =
            dtype_of(t.kind()).ok_or_else(|| TensorIoError::UnsupportedKind { name: name.clone(), kind: t.kind() })?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        cpu.push((name.as_str(), CpuTensor { dtype, shape, bytes: tensor_bytes(t) }));
    }
    let views = cpu.iter().map(|(n, t)| (*n, t));
    safetensors::serialize(views, Some(metadata)).map_err(|e| TensorIoError::Format(e.to_string()))
}

/// Named tensors and string metadata, as decoded from a safetensors buffer.
pub type Decoded = (BTreeMap<String, Tensor>, HashMap<String, String>);

/// Decodes a safetensors buffer into CPU tensors and its metadata.
pub fn decode(bytes: &[u8]) -> Result<Decoded, TensorIoError> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| TensorIoError::Format(e.to_string()))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(bytes).map_err(|e| TensorIoError::Format(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype())
            .ok_or_else(|| TensorIoError::UnsupportedDtype { name: name.clone(), dtype: view.dtype() })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        out.insert(name, Tensor::from_data_size(view.data(), &shape, kind));
    }
    Ok((out, metadata))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder,
/// flushed to disk, then renamed over `path`. A crash leaves either the old
/// file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_and_metadata_survive_a_round_trip() {
        let mut t = BTreeMap::new();
        t.insert("a.weight".to_string(), Tensor::from_slice(&[1.5f32, -2.0, 3.0, 4.0]).reshape([2, 2]));
        t.insert("b.t".to_string(), Tensor::from_slice(&[7i64]));
        let mut meta = HashMap::new();
        meta.insert("k".to_string(), "v".to_string());
        let bytes = encode(&t, meta.clone()).unwrap();
        let (back, meta_back) = decode(&bytes).unwrap();
        assert_eq!(meta_back, meta);
        assert_eq!(back.len(), 2);
        assert!(back["a.weight"].equal(&t["a.weight"]));
        assert_eq!(back["b.t"].int64_value(&[0]), 7);
    }

    #[test]
    fn garbage_is_a_format_error() {
        assert!(matches!(decode(b"not a tensor file"), Err(TensorIoError::Format(_))));
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
