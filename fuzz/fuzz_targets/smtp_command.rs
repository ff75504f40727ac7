//! smtpd's command line parser (verbs, paths, ESMTP parameters).
#![no_main]
use classicd::smtp::command::{self, Command};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match command::parse(data) {
        Ok(Command::Mail(path, params)) => {
            let _ = (path, params.envid.map(|e| assert!(e.len() <= 100)));
        }
        Ok(c) => {
            let _ = format!("{c:?}");
        }
        Err(reply) => {
            let bytes = reply.to_bytes();
            assert!(bytes.ends_with(b"\r\n"));
            assert!(bytes[..3].iter().all(u8::is_ascii_digit));
            assert!((b'4'..=b'5').contains(&bytes[0]), "{reply:?}");
        }
    }
});
