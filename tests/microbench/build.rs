//! The bench links several plugin rlibs; each carries the same
//! `#[export_root_module]` symbol (unused: nothing is loaded as a plugin), so
//! the linker keeps the first definition.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-benches=-Wl,--allow-multiple-definition");
    }
}
