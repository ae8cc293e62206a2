//! Finding libnccl before cudarc does. cudarc's run-time loader `dlopen`s
//! `libnccl.so` (then `libnccl.so.13`, `.so.12`, …) — not `libnccl.so.2`,
//! the only name pip's `nvidia-nccl` wheel (torch's dependency) ships — and
//! panics when none loads. [`check`] looks where `dlopen` would and turns a
//! miss into an error that says what to do.

use std::path::{Path, PathBuf};

/// The names cudarc's loader tries, in its order (Linux).
pub const LOADER_NAMES: &[&str] =
    &["libnccl.so", "libnccl.so.13", "libnccl.so.12", "libnccl.so.11", "libnccl.so.10", "libnccl.so.9", "libnccl.so.1"];

/// The torch environment's NCCL folder (`…/site-packages/nvidia/nccl/lib`),
/// known from the libtorch this crate was built against; the `dmtl` binary
/// carries it in its rpath next to `torch/lib`.
pub fn torch_nccl_dir() -> Option<PathBuf> {
    let torch_lib = option_env!("DMTL_TORCH_LIB_DIR").filter(|s| !s.is_empty())?;
    Some(Path::new(torch_lib).join("../../nvidia/nccl/lib"))
}

/// Folders `dlopen` searches (LD_LIBRARY_PATH, the rpath, the system folders).
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("LD_LIBRARY_PATH").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
    dirs.extend(torch_nccl_dir());
    dirs.extend(
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib"]
            .map(PathBuf::from),
    );
    dirs
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A file with a loader name.
    Loadable(PathBuf),
    /// A loader name in the dynamic linker's cache (`/etc/ld.so.cache`).
    InLinkerCache,
    /// Only the soname `libnccl.so.2`: it needs a `libnccl.so` link beside it.
    OnlySoname(PathBuf),
    Nothing,
}

/// Looks for a loadable libnccl in `dirs`, then in the linker cache bytes.
pub fn locate(dirs: &[PathBuf], linker_cache: Option<&[u8]>) -> Found {
    for dir in dirs {
        for name in LOADER_NAMES {
            let path = dir.join(name);
            if path.exists() {
                return Found::Loadable(path);
            }
        }
    }
    if let Some(cache) = linker_cache {
        let has = |name: &str| {
            let needle = [name.as_bytes(), b"\0"].concat();
            cache.windows(needle.len()).any(|w| w == needle.as_slice())
        };
        if LOADER_NAMES.iter().any(|n| has(n)) {
            return Found::InLinkerCache;
        }
    }
    dirs.iter().map(|d| d.join("libnccl.so.2")).find(|p| p.exists()).map_or(Found::Nothing, Found::OnlySoname)
}

/// `Ok` when `dlopen("libnccl.so")` (or another loader name) should succeed;
/// otherwise a message naming what to do.
pub fn check() -> Result<Found, String> {
    let cache = std::fs::read("/etc/ld.so.cache").ok();
    let found = locate(&search_dirs(), cache.as_deref());
    match &found {
        Found::Loadable(_) | Found::InLinkerCache => Ok(found),
        Found::OnlySoname(path) => Err(format!(
            "{} exists but NCCL is loaded as `libnccl.so`: create the link \
             `ln -s libnccl.so.2 {}` (scripts/setup-venv.sh does this for the torch environment)",
            path.display(),
            path.with_file_name("libnccl.so").display()
        )),
        Found::Nothing => Err(format!(
            "none of {} in LD_LIBRARY_PATH, the torch environment or the system folders; install NCCL \
             (pip's nvidia-nccl-cu13 comes with torch) and put a `libnccl.so` link to `libnccl.so.2` on \
             LD_LIBRARY_PATH",
            LOADER_NAMES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dmtl-nccl-probe-{}-{}", std::process::id(), files.join("+")));
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        dir
    }

    #[test]
    fn only_the_pip_soname_asks_for_a_link() {
        let dir = dir_with(&["libnccl.so.2"]);
        assert_eq!(locate(std::slice::from_ref(&dir), None), Found::OnlySoname(dir.join("libnccl.so.2")));
        let dir = dir_with(&["libnccl.so.2", "libnccl.so"]);
        assert_eq!(locate(std::slice::from_ref(&dir), None), Found::Loadable(dir.join("libnccl.so")));
    }

    #[test]
    fn the_linker_cache_counts_and_nothing_is_nothing() {
        let empty = dir_with(&[]);
        let cache = b"ld.so-1.7.0\0libnccl.so\0/usr/lib/libnccl.so\0".to_vec();
        assert_eq!(locate(std::slice::from_ref(&empty), Some(&cache)), Found::InLinkerCache);
        assert_eq!(locate(std::slice::from_ref(&empty), Some(b"libnccl.so.2\0")), Found::Nothing);
    }
}
