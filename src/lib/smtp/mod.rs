#![forbid(unsafe_code)]
//! smtpd (placeholder until the protocol lands).

pub mod queue;

use crate::net::Line;
use crate::runtime::config::KeySpec;
use crate::runtime::{no_check, Handler, Service, Session};

pub const KEYS: &[KeySpec] = &[];

pub static SERVICE: Service = Service {
    name: "smtpd",
    port: 25,
    pam_service: "smtp",
    log_facility: "mail",
    idle_timeout: 600,
    keys: KEYS,
    extra_listeners: &[],
    line_max: 4096,
    busy_reply: b"421 4.3.2 Too many connections, try again later\r\n",
    handler: Handler::Tcp(serve),
    check: no_check,
    extra_modes: &[],
    companion: None,
};

fn serve(mut s: Session) {
    let banner = s.banner("smtpd");
    if s.conn.send(format!("220 {banner}\r\n").as_bytes()).is_err() {
        return;
    }
    loop {
        match s.conn.read_line(4096) {
            Ok(Line::Complete(l, _)) if l.eq_ignore_ascii_case(b"QUIT") => {
                let _ = s.conn.send(b"221 Bye\r\n");
                return;
            }
            Ok(Line::Complete(..)) | Ok(Line::TooLong) => {
                if s.conn.send(b"500 Not implemented\r\n").is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}
