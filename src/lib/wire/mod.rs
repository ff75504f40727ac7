#![forbid(unsafe_code)]
//! The wire form of text messages (mail and news articles), shared by
//! every line protocol that carries one as a dot-terminated block: SMTP
//! DATA and the SMTP client, POP3 RETR/TOP, NNTP POST/IHAVE/ARTICLE.
//!
//! On the wire every line ends with CRLF, a line that starts with "." gets
//! a second one (dot-stuffing), and the block ends with a line holding a
//! lone "." ([RFC 5321 4.5.2], [RFC 3977 3.1.1]). Everything here is pure,
//! streaming and in constant memory whatever the line lengths; the callers
//! do the I/O.
//!
//! - Going out: [`DotStuffer`] (bytes in pieces -> stuffed CRLF bytes, then
//!   the "." line), [`WireWriter`] (a whole multi-line reply in ~64 KiB
//!   writes, with POP3 TOP's line limit), [`WireSize`] (the octet count of
//!   the CRLF form, for LIST/STAT/SIZE without reading the message twice).
//! - Coming in: [`Unstuffer`] (one line at a time from the bounded line
//!   reader -> the content line, or the end of the block; the end is only
//!   ever `CRLF . CRLF`, so no SMTP-smuggling variant ends a block early)
//!   and [`push_crlf_line`] (the content line stored with CRLF, bare CRs
//!   neutralised).
//! - CRLF conversions: [`CrlfToLf`] / [`CrlfToLfReader`] (wire or spool
//!   form -> LF for mailboxes and FTP ASCII uploads), [`lf_to_crlf`] (FTP
//!   ASCII downloads: every LF, whatever precedes it).
//!
//! [RFC 5321 4.5.2]: https://www.rfc-editor.org/rfc/rfc5321#section-4.5.2
//! [RFC 3977 3.1.1]: https://www.rfc-editor.org/rfc/rfc3977#section-3.1.1

mod crlf;
mod stuff;
mod unstuff;

pub use crlf::{lf_to_crlf, push_crlf_line, wire_size, CrlfToLf, CrlfToLfReader, WireSize};
pub use stuff::{DotStuffer, WireWriter};
pub use unstuff::{DotLine, Unstuffer};

#[cfg(test)]
mod round_trip_tests;
