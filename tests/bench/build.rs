//! Several plugin rlibs are linked into the benchmark binaries; each carries
//! the same `#[export_root_module]` symbol (unused here: these binaries load
//! no plugins), so the linker is told to keep the first definition.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,--allow-multiple-definition");
    }
}
