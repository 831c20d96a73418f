//! Builds the kernel programs (`tracer-ebpf`) for the BPF target; `src/loader.rs` embeds the
//! object with `include_bytes_aligned!`.

use anyhow::{anyhow, Context as _};

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest_dir)
        .parent()
        .ok_or_else(|| anyhow!("no workspace root above {manifest_dir}"))?;
    let ebpf_dir = root.join("tracer-ebpf");
    // The event layouts live in tracer-common: a change there must rebuild the programs too.
    println!(
        "cargo:rerun-if-changed={}",
        root.join("tracer-common").display()
    );
    let ebpf_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tracer-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
