//! Compiles `dmtl/v1/*.proto` into tonic clients and servers, and writes the
//! file descriptor set that server reflection serves. Uses the vendored
//! `protoc`, so no system protobuf compiler is needed.

use std::path::PathBuf;

const PROTOS: [&str; 3] = ["dmtl/v1/common.proto", "dmtl/v1/coordinator.proto", "dmtl/v1/monitor.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protoc = protoc_bin_vendored::protoc_bin_path()?;

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Chunk payloads decode into `Bytes` that share the received buffer.
        .bytes(".dmtl.v1.SnapshotChunk.data")
        .bytes(".dmtl.v1.UpdateChunk.data")
        .file_descriptor_set_path(out_dir.join("dmtl_descriptor.bin"))
        .compile_with_config(config, &PROTOS, &["."])?;
    Ok(())
}
