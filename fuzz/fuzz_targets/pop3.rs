//! pop3d: the command parser, and the state machine driven by arbitrary
//! lines, login outcomes and maildrops. What the driver relies on: every
//! reply is "+OK"/"-ERR" lines ending in CRLF, and a retrieval names a
//! message of the maildrop.
#![no_main]
use classicd::mail::MessageInfo;
use classicd::pop3::command;
use classicd::pop3::state::{Action, Config, LoginFailure, Machine};

fn check_reply(r: &[u8]) {
    assert!(r.ends_with(b"\r\n"), "{:?}", String::from_utf8_lossy(r));
    assert!(
        r.starts_with(b"+") || r.starts_with(b"-ERR"),
        "{:?}",
        String::from_utf8_lossy(r)
    );
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let mut m = Machine::new(Config {
        tls_available: setup & 1 != 0,
        tls_active: setup & 2 != 0,
        cleartext_login: setup & 4 != 0,
        login_attempts: u32::from(setup >> 5),
    });
    let count = usize::from(setup >> 3 & 3) * 2;
    let mut msgs_len = 0;
    for (n, line) in rest.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let _ = command::keyword(line);
        let _ = command::parse(line);
        let action = if line.len() > 255 {
            m.too_long()
        } else {
            m.handle(line)
        };
        let next = match action {
            Action::Reply(r) => {
                check_reply(&r);
                continue;
            }
            Action::Close(r) => {
                check_reply(&r);
                return;
            }
            Action::StartTls(r) => {
                check_reply(&r);
                m.tls_started();
                continue;
            }
            Action::Login { .. } => match n % 5 {
                0 => m.login_failed(LoginFailure::Denied),
                1 => m.login_failed(LoginFailure::Temporary),
                2 => m.login_failed(LoginFailure::InUse),
                _ => {
                    let msgs: Vec<MessageInfo> = (0..count)
                        .map(|i| MessageInfo {
                            uid: format!("u{i}"),
                            size: i as u64 * 100,
                        })
                        .collect();
                    msgs_len = msgs.len();
                    m.login_ok(msgs)
                }
            },
            Action::Retrieve { index, status, top } => {
                assert!(index < msgs_len, "RETR of message {index} of {msgs_len}");
                assert!(m.seen().len() == msgs_len);
                check_reply(&status);
                let _ = top;
                if n % 3 == 0 {
                    check_reply(&m.retrieve_failed(index));
                }
                continue;
            }
            Action::Update => {
                assert_eq!(m.deleted().len(), msgs_len);
                m.updated(if n % 2 == 0 { Ok(0) } else { Err("x".into()) })
            }
        };
        match next {
            Action::Reply(r) => check_reply(&r),
            Action::Close(r) => {
                check_reply(&r);
                return;
            }
            other => panic!("{other:?} after a login or an update"),
        }
    }
});
