#![forbid(unsafe_code)]
//! The network side of a session: a bounded line reader, plain or TLS
//! streams, and the connection type that protocol drivers talk through.

mod conn;
pub mod dialogue;
pub mod field;
mod line;
pub mod tls;

pub use conn::{Conn, Stream};
pub use line::{Ending, Line, LineBuf};

/// Whether an I/O error is a read or write timeout (the idle timer).
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
