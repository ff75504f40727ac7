#![forbid(unsafe_code)]
//! File system helpers for sessions: client paths resolved inside a root
//! ([`Jail`]), and durable writes ([`durable`]: write aside, fsync, rename,
//! fsync the directory).

pub mod durable;
mod jail;

pub use durable::{sync_dir, AsideFile};
pub use jail::{normalize, Jail};

/// Make `dir` and its missing parents, each new one mode 0700.
pub fn create_private_dir_all(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
