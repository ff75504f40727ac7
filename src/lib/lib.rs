//! classicd: the classic Unix network daemons over one shared runtime.
//!
//! Data flows one way: the network gives bytes, the runtime turns them into
//! lines, a protocol module turns lines into commands and decisions, and the
//! session driver carries the decisions out. Only `sys` holds code the
//! compiler cannot check (and `runtime::supervise` its one call of fork).
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod sys;

pub mod auth;
pub mod calendar;
pub mod fs;
pub mod ftp;
pub mod host;
pub mod imap;
pub mod mail;
pub mod net;
pub mod nntp;
pub mod pop3;
pub mod pty;
pub mod queue;
pub mod rlogin;
pub mod rsh;
pub mod runtime;
pub mod smtp;
pub mod telnet;
pub mod telnetd;
pub mod tftp;
pub mod wire;

#[cfg(test)]
mod test_alone;
