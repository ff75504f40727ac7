// sys::crypt_scratch interposes libc's mmap for libcrypt: the dynamic
// linker sees an executable's definition only if it is exported.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg=-Wl,--export-dynamic-symbol=mmap");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
