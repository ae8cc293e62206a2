//! Start-up checks of the `nccl` data plane: fail at once, saying why,
//! rather than at the first collective.

/// Why the `nccl` data plane cannot run in this process.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error(
        "config key `distributed.data_plane` = \"nccl\" needs dmtl built with the `nccl` cargo feature \
         (`cargo build --release --features nccl`); this build has only the \"grpc\" data plane"
    )]
    FeatureMissing,
    #[error(
        "config key `distributed.data_plane` = \"nccl\": no CUDA device was found (libtorch sees no GPU); \
         the nccl data plane all-reduces on GPUs, use data_plane = \"grpc\" on this machine"
    )]
    NoCudaDevice,
    #[error(
        "device `{device}`: the nccl data plane trains on a `cuda:N` device (this machine has {count} CUDA devices)"
    )]
    NotCudaDevice { device: String, count: i64 },
    #[error("config key `distributed.data_plane` = \"nccl\": the NCCL library cannot be loaded: {0}")]
    LibraryMissing(String),
}

/// Checks that this process can use the `nccl` data plane: the build has
/// the `nccl` feature, libtorch sees a CUDA device (`device`, when given, is
/// one of them: a worker's `cuda:N`), and libnccl is loadable.
pub fn check_nccl_plane(device: Option<&str>) -> Result<(), PlaneError> {
    if !cfg!(feature = "nccl") {
        return Err(PlaneError::FeatureMissing);
    }
    if !tch::Cuda::is_available() {
        return Err(PlaneError::NoCudaDevice);
    }
    if let Some(device) = device {
        cuda_ordinal(device)?;
    }
    crate::library::check().map_err(PlaneError::LibraryMissing)?;
    Ok(())
}

/// The ordinal N of a `cuda:N` device of this machine.
pub fn cuda_ordinal(device: &str) -> Result<usize, PlaneError> {
    let count = tch::Cuda::device_count();
    let bad = || PlaneError::NotCudaDevice { device: device.to_string(), count };
    let n: usize = device.strip_prefix("cuda:").and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    if (n as i64) < count {
        Ok(n)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "nccl"))]
    #[test]
    fn a_build_without_the_feature_names_the_key_and_the_feature() {
        let e = check_nccl_plane(Some("cuda:0")).unwrap_err().to_string();
        assert!(e.contains("`distributed.data_plane`") && e.contains("`nccl` cargo feature"), "{e}");
    }

    #[cfg(feature = "nccl")]
    #[test]
    fn without_a_gpu_the_feature_build_says_no_cuda_device_was_found() {
        if tch::Cuda::is_available() {
            return; // a GPU machine: nothing to refuse
        }
        let e = check_nccl_plane(Some("cuda:0")).unwrap_err().to_string();
        assert!(e.contains("`distributed.data_plane`") && e.contains("no CUDA device was found"), "{e}");
    }

    #[test]
    fn a_cpu_device_is_not_a_cuda_device() {
        let e = cuda_ordinal("cpu").unwrap_err().to_string();
        assert!(e.contains("`cpu`") && e.contains("cuda:N"), "{e}");
    }
}
