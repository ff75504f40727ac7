//! Logging through the `log` facade to syslog or stderr.
//!
//! The logger is installed once and reconfigured in place: after a fork the
//! session reopens it so that syslog lines carry the session's pid, and in
//! inetd mode stderr is the client's socket, so it is never written to.

use std::io::Write;
use std::sync::Mutex;

use log::{Level, LevelFilter, Metadata, Record};
use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

pub fn facility_from_name(name: &str) -> Option<Facility> {
    name.parse().ok()
}

/// Where log lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Syslog(String),
    Stderr,
    /// Nowhere (inetd mode with no syslog socket).
    Discard,
}

struct Sink {
    ident: String,
    target: Target,
    syslog: Option<Logger<LoggerBackend, Formatter3164>>,
}

struct DaemonLogger {
    sink: Mutex<Option<Sink>>,
}

static LOGGER: DaemonLogger = DaemonLogger {
    sink: Mutex::new(None),
};

fn open_syslog(ident: &str, facility: &str) -> Option<Logger<LoggerBackend, Formatter3164>> {
    let formatter = Formatter3164 {
        facility: facility_from_name(facility).unwrap_or(Facility::LOG_DAEMON),
        hostname: None,
        process: ident.to_string(),
        pid: std::process::id(),
    };
    syslog::unix(formatter).ok()
}

/// Install or reconfigure the logger. `debug` lets protocol dialogue through.
pub fn init(ident: &str, target: Target, debug: bool) {
    let syslog = match &target {
        Target::Syslog(facility) => open_syslog(ident, facility),
        _ => None,
    };
    let mut guard = LOGGER.sink.lock().unwrap_or_else(|e| e.into_inner());
    *guard = Some(Sink {
        ident: ident.to_string(),
        target,
        syslog,
    });
    drop(guard);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
}

/// Reopen in a child the supervisor has just forked: a new syslog
/// connection stamped with this pid. The supervisor has already closed the
/// parent's syslog socket, so the old logger is forgotten, not dropped:
/// dropping it would close its descriptor number again, which the new
/// connection may well have been given.
pub fn reopen_after_fork() {
    let mut guard = LOGGER.sink.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sink) = guard.as_mut() {
        if let Some(old) = sink.syslog.take() {
            std::mem::forget(old);
        }
        if let Target::Syslog(facility) = &sink.target {
            sink.syslog = open_syslog(&sink.ident, facility);
        }
    }
}

impl log::Log for DaemonLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut guard = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = guard.as_mut() else { return };
        let msg = record.args().to_string();
        match sink.target {
            Target::Stderr => {
                // One write per line: stderr is unbuffered, and processes
                // sharing it must not interleave fragments of their lines.
                let line = format!(
                    "{}[{}]: {}: {}\n",
                    sink.ident,
                    std::process::id(),
                    record.level().as_str().to_lowercase(),
                    msg
                );
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Target::Syslog(_) => {
                if let Some(l) = sink.syslog.as_mut() {
                    let _ = match record.level() {
                        Level::Error => l.err(msg),
                        Level::Warn => l.warning(msg),
                        Level::Info => l.info(msg),
                        Level::Debug | Level::Trace => l.debug(msg),
                    };
                }
            }
            Target::Discard => {}
        }
    }

    fn flush(&self) {}
}
