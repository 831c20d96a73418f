//! Builds the kernel programs (`tracer-ebpf`) for the BPF target and strips their debug info;
//! `src/capture/loader.rs` embeds the object with `include_bytes_aligned!`.

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
    )?;
    strip_debug_info()
}

/// The programs' object without its DWARF (its BTF stays, and the programs' line info with
/// it): at every start aya went through each relocation of the debug sections (5 M of the
/// 36 M instructions to ready), and the binary carried 765 KB of it. LLVM 22's objcopy
/// comes with the LLVM bpf-linker is built against; without it the object stays whole.
fn strip_debug_info() -> anyhow::Result<()> {
    let object =
        std::path::PathBuf::from(std::env::var("OUT_DIR").context("OUT_DIR")?).join("tracer");
    match std::process::Command::new("llvm-objcopy-22")
        .arg("--strip-debug")
        .arg(&object)
        .status()
    {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => anyhow::bail!("llvm-objcopy-22 --strip-debug {}: {st}", object.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("cargo:warning=no llvm-objcopy-22: the kernel programs keep their debug info");
            Ok(())
        }
        Err(e) => Err(e).context("running llvm-objcopy-22"),
    }
}
