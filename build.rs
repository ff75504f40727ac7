// sys::crypt_scratch interposes libc's mmap for libcrypt: the dynamic
// linker sees an executable's definition only if it is exported. Only on
// 64-bit Linux with glibc, where the raw mmap system call is exactly what
// glibc's mmap does (the cfg on crypt_scratch in src/lib/sys must agree).
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let width = std::env::var("CARGO_CFG_TARGET_POINTER_WIDTH").unwrap_or_default();
    if os == "linux" && env == "gnu" && width == "64" {
        println!("cargo:rustc-link-arg=-Wl,--export-dynamic-symbol=mmap");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
