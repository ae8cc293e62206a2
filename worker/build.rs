//! Links every target of this crate against libtorch: see build-support/link_torch.rs.
include!("../build-support/link_torch.rs");

fn main() {
    link_torch();
}
