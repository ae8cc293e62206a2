//! Links every target of this crate (tests included) against libtorch so that it
//! runs without LD_LIBRARY_PATH, and tells the NCCL library probe where the torch
//! environment's `nvidia/nccl/lib` folder is (`DMTL_TORCH_LIB_DIR`).
fn main() {
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
}
