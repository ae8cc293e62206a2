// Shared by every crate's build.rs (`include!`): links each target of the
// crate (tests included) against libtorch so that it runs without
// LD_LIBRARY_PATH.
// - An rpath to torch's lib folder, and `libtorch` kept with `--no-as-needed`
//   so that `libtorch_cuda` is loaded when present.
// - A second rpath entry naming the torch environment's `nvidia/nccl/lib`,
//   where the `nccl` data plane's run-time loader finds `libnccl.so` (a link to
//   the wheel's `libnccl.so.2` that scripts/setup-venv.sh creates).
// - `DMTL_TORCH_LIB_DIR` for the NCCL library probe (empty when unknown).
// The crate must depend on torch-sys directly to see `DEP_TCH_LIBTORCH_LIB`.

fn link_torch() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        // `…/site-packages/torch/lib` → `…/site-packages/nvidia/nccl/lib` (lexically, as torch/lib is named).
        if let Some(nccl) =
            std::path::Path::new(&lib).parent().and_then(|t| t.parent()).map(|s| s.join("nvidia/nccl/lib"))
        {
            if nccl.is_dir() {
                println!("cargo:rustc-link-arg=-Wl,-rpath={}", nccl.display());
            }
        }
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-env=DMTL_TORCH_LIB_DIR={lib}");
    } else {
        println!("cargo:rustc-env=DMTL_TORCH_LIB_DIR=");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=../build-support/link_torch.rs");
}
