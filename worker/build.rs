//! Links every target of this crate (tests included) against libtorch so that it
//! runs without LD_LIBRARY_PATH: an rpath to torch's lib folder, and `libtorch`
//! kept with `--no-as-needed` so that `libtorch_cuda` is loaded when present.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
