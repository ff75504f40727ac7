//! smtpd's outbound client (the relay): remote replies and EHLO keywords
//! from arbitrary lines, and the MAIL/RCPT commands it writes. The input
//! starts with a MAIL line and RCPT lines as a client sent them to us
//! (parsed by our server's parser), then the remote server's lines. What
//! the relay writes parses, with our parser, to the sender, recipients and
//! DSN parameters it was given; every recipient gets exactly one result.
#![no_main]
use classicd::smtp::address::Path;
use classicd::smtp::command::{self, Command, MailParams, NotifyFlags, RcptParams, RetKind};
use classicd::smtp::queue::client::{
    Action, ClientMessage, ClientRcpt, HostResult, ReplyReader, Transaction,
};

fn address(p: &Path) -> String {
    match p {
        Path::Null => String::new(),
        Path::Mailbox(m) => m.address(),
    }
}

/// As the queue stores NOTIFY and the worker passes it on.
fn notify_param(n: Option<NotifyFlags>) -> Option<String> {
    let n = n.unwrap_or(NotifyFlags::DEFAULT);
    if n.is_never() {
        return Some("NEVER".into());
    }
    let v: Vec<&str> = [
        (n.success, "SUCCESS"),
        (n.failure, "FAILURE"),
        (n.delay, "DELAY"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, s)| *s)
    .collect();
    Some(v.join(","))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut lines = data
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(Ok(Command::Mail(sender, mail))) = lines.next().map(command::parse) else {
        return;
    };
    let mut rcpts: Vec<(Path, RcptParams)> = Vec::new();
    let mut server = Vec::new();
    for l in lines.by_ref() {
        match command::parse(l) {
            Ok(Command::Rcpt(p, r)) if rcpts.len() < 5 => rcpts.push((p, r)),
            _ => {
                server.push(l);
                break;
            }
        }
    }
    server.extend(lines);
    let msg = ClientMessage {
        sender: address(&sender),
        size: mail.size.unwrap_or(1000),
        body_8bit: mail.body_8bit,
        smtputf8: mail.smtputf8,
        ret: mail.ret.map(|r| match r {
            RetKind::Full => "FULL",
            RetKind::Hdrs => "HDRS",
        }),
        envid: mail.envid.clone(),
        rcpts: rcpts
            .iter()
            .enumerate()
            .map(|(i, (p, r))| ClientRcpt {
                index: i * 2,
                address: address(p),
                notify: notify_param(r.notify),
                orcpt: r.orcpt.clone(),
            })
            .collect(),
    };
    let mut t = Transaction::new("relay.test", msg.clone(), true);
    let mut reader = ReplyReader::default();
    let mut lines = server.into_iter();
    let mut rcpt_no = 0;
    loop {
        let Some(line) = lines.next() else {
            t.connection_failed("connection closed");
            break;
        };
        let reply = match reader.feed(line) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                t.connection_failed(&e);
                break;
            }
        };
        match t.on_reply(reply) {
            Action::Send(c) => {
                assert!(!c.contains(['\r', '\n']), "{c:?}");
                let ext = &t.ext;
                match command::parse(c.as_bytes()) {
                    Ok(Command::Mail(p, got)) => {
                        assert_eq!(address(&p), msg.sender);
                        let want = MailParams {
                            size: ext.size.map(|_| msg.size),
                            body_8bit: msg.body_8bit && ext.eightbitmime,
                            smtputf8: msg.smtputf8 && ext.smtputf8,
                            ret: mail.ret.filter(|_| ext.dsn),
                            envid: mail.envid.clone().filter(|_| ext.dsn),
                            auth: None,
                        };
                        assert_eq!(got, want, "{c:?}");
                    }
                    Ok(Command::Rcpt(p, got)) => {
                        let (want_path, want) = &rcpts[rcpt_no];
                        rcpt_no += 1;
                        assert_eq!(address(&p), address(want_path));
                        if ext.dsn {
                            assert_eq!(
                                got.notify.unwrap_or(NotifyFlags::DEFAULT),
                                want.notify.unwrap_or(NotifyFlags::DEFAULT)
                            );
                            assert_eq!(got.orcpt, want.orcpt, "{c:?}");
                        } else {
                            assert_eq!(got, RcptParams::default());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("the relay wrote {c:?}, which we refuse: {e:?}"),
                }
            }
            Action::StartTls => {
                let _ = t.tls_started();
            }
            Action::SendBody => {}
            Action::Quit => break,
        }
    }
    match t.result() {
        HostResult::TryNext { .. } => {}
        HostResult::Done(results) => {
            for r in &msg.rcpts {
                let n = results.iter().filter(|(i, _)| *i == r.index).count();
                assert_eq!(n, 1, "recipient {} has {n} results", r.index);
            }
            assert_eq!(results.len(), msg.rcpts.len());
        }
    }
});
