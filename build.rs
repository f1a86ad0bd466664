//! Release builds of the binary place the functions it runs together
//! (build/symbol-order.txt, made by scripts/symbol-order.sh): resident
//! code ~4 MB smaller. Only where the linker is lld, which reads that list:
//! Rust's default linker for x86_64-unknown-linux-gnu. Names the list has
//! and the build does not are ignored, so a stale list only helps less.

use std::path::Path;

fn main() {
    let order = Path::new("build/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=PORTCULLIS_NO_SYMBOL_ORDER");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_by_default = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let opted_out = std::env::var_os("PORTCULLIS_NO_SYMBOL_ORDER").is_some();
    if release && lld_by_default && !opted_out && order.exists() {
        let path = order.canonicalize().unwrap_or_else(|_| order.to_path_buf());
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", path.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
