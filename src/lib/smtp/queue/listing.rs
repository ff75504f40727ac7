//! `smtpd --queue` (like mailq) and `smtpd --flush` (like sendmail -q).

use crate::runtime::config::Settings;

pub fn list_queue_mode(settings: &Settings, _args: &[String]) -> i32 {
    let _ = settings;
    0
}

pub fn flush_mode(settings: &Settings, _args: &[String]) -> i32 {
    let _ = settings;
    0
}
