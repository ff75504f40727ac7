#![forbid(unsafe_code)]
//! File system views for sessions: client paths resolved inside a root.

mod jail;

pub use jail::{normalize, Jail};
