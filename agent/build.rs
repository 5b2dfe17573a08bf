//! Links the agent with packed relative relocations (DT_RELR) on glibc
//! Linux: the PIE's ~32 k relative relocations then take a few KB instead
//! of 770 KB that the loader reads and applies at every start (a cost
//! `agent exec` pays before running anything). Needs glibc ≥ 2.36 and
//! binutils ≥ 2.38, which the image's Debian bookworm has.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
