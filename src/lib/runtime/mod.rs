#![deny(unsafe_code)]
// (supervise.rs holds the one exception: the call of sys::fork.)
//! The runtime every daemon shares: command line, configuration, inetd mode,
//! the standalone master that forks one session per connection, limits,
//! signals and logging. A daemon is a `Service` plus its protocol.

mod cli;
pub mod config;
pub mod invocation;
pub mod log;
mod master;
mod pool;
pub mod session;
pub mod supervise;

use std::net::UdpSocket;
use std::sync::Arc;

use config::{BuildConfig, KeySpec, Settings};

/// Kept here for the sessions that name the host (it lives below the runtime).
pub use crate::host::hostname;
pub use cli::run;

/// How a daemon's sessions are started.
#[derive(Clone, Copy)]
pub enum Handler {
    /// One TCP connection per session (inetd `nowait`), through the
    /// privilege split (see `session`): a root monitor, an unprivileged
    /// pre-login process, the account's process after login.
    Split(&'static dyn session::TcpProtocol),
    /// A bound UDP socket handed to a session that reads the first request
    /// itself (inetd `wait`): no other session starts until it ends.
    Udp(fn(UdpSession)),
}

/// An extra command-line mode of one daemon, such as `nntpd --newgroup`.
/// It runs after the configuration is loaded, with the free arguments.
#[derive(Clone, Copy)]
pub struct ExtraMode {
    pub long: &'static str,
    pub usage: &'static str,
    pub run: fn(&Settings, &[String]) -> i32,
}

/// Everything the runtime needs to know about a daemon.
pub struct Service {
    /// Binary name, used for the syslog ident and the default config file.
    pub name: &'static str,
    /// Standard port, the default `listen`.
    pub port: u16,
    pub pam_service: &'static str,
    pub log_facility: &'static str,
    pub idle_timeout: u64,
    /// The daemon's own keys (the common ones are added by the runtime).
    pub keys: &'static [KeySpec],
    /// Keys of kind Addrs, beyond `listen` and `tls_listen`, that name more
    /// listeners (smtpd's `submission_listen`).
    pub extra_listeners: &'static [&'static str],
    /// Longest command line the protocol accepts (bounds the line buffer).
    pub line_max: usize,
    /// Sent to a client refused over `max_sessions` or `max_per_ip`;
    /// `<host>` in it is replaced by the host name.
    pub busy_reply: &'static [u8],
    pub handler: Handler,
    /// Builds the daemon's typed configuration once per load (start,
    /// SIGHUP, -t), with the checks across its keys; sessions then read it
    /// with `settings.daemon::<T>()`. `config::no_daemon_config` for none.
    pub config: BuildConfig,
    pub extra_modes: &'static [ExtraMode],
    /// A long-running helper process of the standalone master (smtpd's queue
    /// runner): forked after start-up, restarted if it dies, restarted with
    /// the new settings on SIGHUP, sent SIGTERM when the master stops.
    pub companion: Option<fn(Arc<Settings>)>,
    /// Connections one session process may serve in turn (1: one process
    /// per connection). Above one, a monitor whose connection ended cleanly
    /// waits for the next one instead of exiting (see `pool`), and keeps its
    /// pre-login process for it; only for services without logins (whose
    /// processes never change identity: smtpd).
    pub max_use: u32,
}

/// Which configured list a connection arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenKind {
    /// `listen`: plain, with the in-protocol TLS upgrade when configured.
    Plain,
    /// `tls_listen`: TLS from the first byte.
    Tls,
    /// One of the service's extra listener keys, by name.
    Extra(&'static str),
}

/// What a UDP session gets from the runtime.
pub struct UdpSession {
    pub socket: UdpSocket,
    pub settings: Arc<Settings>,
    pub hostname: String,
    pub inetd: bool,
    pub debug: bool,
}
