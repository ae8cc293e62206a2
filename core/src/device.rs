//! Devices (`cpu`, `cuda:N`) and libtorch's thread count.

use tch::Device;

/// Parses `cpu` or `cuda:N` (also `cuda` for `cuda:0`).
pub fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Device::Cuda(n)),
            _ => Err(format!("expected `cpu` or `cuda:N` (got `{s}`)")),
        },
    }
}

/// Resolves a device and checks that it exists on this machine. On a CUDA
/// device, `cudnn_benchmark` sets cuDNN's benchmark mode (`train.cudnn_benchmark`):
/// the first convolution of each shape times the available algorithms and
/// keeps the fastest; the CPU ignores it.
pub fn open_device(s: &str, cudnn_benchmark: bool) -> Result<Device, String> {
    let device = parse_device(s)?;
    if let Device::Cuda(n) = device {
        let count = tch::Cuda::device_count() as usize;
        if count == 0 {
            return Err(format!("`{s}` requested but libtorch sees no CUDA device on this machine"));
        }
        if n >= count {
            return Err(format!("`{s}` requested but this machine has {count} CUDA device(s)"));
        }
        tch::Cuda::cudnn_set_benchmark(cudnn_benchmark);
    }
    Ok(device)
}

/// Sets libtorch's intra-op thread count (0 keeps libtorch's default).
pub fn set_threads(threads: usize) {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_cuda_devices_parse() {
        assert_eq!(parse_device("cpu"), Ok(Device::Cpu));
        assert_eq!(parse_device("cuda:3"), Ok(Device::Cuda(3)));
        assert_eq!(parse_device("cuda"), Ok(Device::Cuda(0)));
        assert!(parse_device("gpu0").unwrap_err().contains("gpu0"));
        assert!(parse_device("cuda:x").is_err());
    }
}
