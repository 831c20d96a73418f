// Rebuild when the linker changes: building this crate depends on the `bpf-linker` binary.
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
