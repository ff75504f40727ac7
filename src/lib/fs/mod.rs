#![forbid(unsafe_code)]
//! File system helpers for sessions: client paths resolved inside a root
//! ([`Jail`]), and durable writes ([`durable`]: write aside, fsync, rename,
//! fsync the directory).

pub mod durable;
mod jail;

pub use durable::{sync_dir, AsideFile};
pub use jail::{normalize, Jail};
