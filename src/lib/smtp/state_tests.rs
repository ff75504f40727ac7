//! Unit tests of the dialogue state machine.

use super::*;
use crate::smtp::command::parse;

fn cfg() -> Config {
    Config {
        hostname: "mx.test".into(),
        local_domains: vec!["mx.test".into(), "localhost".into()],
        max_size: 1000,
        tls_available: true,
        implicit_tls: false,
        loopback: false,
        submission: false,
        relay_client: false,
        vrfy: false,
        expn: false,
        max_auth_failures: 3,
        max_recipients: 3,
        max_errors: 10,
        lmtp: false,
    }
}

/// Feed a command line; resolve lookups with `demo` as the only user.
fn send(s: &mut State, line: &str) -> Action {
    let a = match parse(line.as_bytes()) {
        Ok(c) => s.handle(c),
        Err(reply) => s.bad_command(reply),
    };
    match a {
        Action::Lookup { local, .. } => s.rcpt_resolved(if local == "demo" {
            Resolution::Targets(vec![Target::Local("demo".into())])
        } else {
            Resolution::Unknown
        }),
        a => a,
    }
}

fn code(a: &Action) -> u16 {
    match a {
        Action::Reply(r) | Action::Close(r) | Action::StartTls(r) | Action::Challenge(r) => r.code,
        Action::BeginData => 354,
        _ => 0,
    }
}

fn status(a: &Action) -> Option<&'static str> {
    match a {
        Action::Reply(r) | Action::Close(r) => r.status,
        _ => None,
    }
}

fn ehlo_lines(a: &Action) -> Vec<String> {
    match a {
        Action::Reply(r) => r.lines.clone(),
        _ => panic!("{a:?}"),
    }
}

#[test]
fn full_transaction() {
    let mut s = State::new(cfg());
    assert_eq!(
        s.greeting("mx.test ESMTP").to_string(),
        "220 mx.test ESMTP\r\n"
    );
    assert_eq!(code(&send(&mut s, "EHLO client.test")), 250);
    assert_eq!(code(&send(&mut s, "MAIL FROM:<a@far.test> SIZE=500")), 250);
    let a = send(
        &mut s,
        "RCPT TO:<demo@mx.test> NOTIFY=SUCCESS ORCPT=rfc822;demo@mx.test",
    );
    assert_eq!((code(&a), status(&a)), (250, Some("2.1.5")));
    let a = send(&mut s, "RCPT TO:<nobody@mx.test>");
    assert_eq!((code(&a), status(&a)), (550, Some("5.1.1")));
    assert_eq!(send(&mut s, "DATA"), Action::BeginData);
    let t = s.transaction().unwrap();
    assert_eq!(t.sender, "a@far.test");
    assert_eq!(t.recipients.len(), 1);
    assert_eq!(
        t.recipients[0].params.orcpt.as_deref(),
        Some("rfc822;demo@mx.test")
    );
    assert_eq!(s.protocol(), "ESMTP");
    assert_eq!(s.data_start().code, 354);
    let r = s.data_end(DataOutcome::Queued("ABC".into()));
    assert_eq!(r.to_string(), "250 2.0.0 Ok: queued as ABC\r\n");
    assert!(s.transaction().is_none());
    // A second transaction on the same session.
    assert_eq!(code(&send(&mut s, "MAIL FROM:<>")), 250);
    assert_eq!(code(&send(&mut s, "RCPT TO:<Demo@MX.TEST>")), 550);
    assert_eq!(code(&send(&mut s, "RCPT TO:<demo@localhost>")), 250);
    assert_eq!(send(&mut s, "DATA"), Action::BeginData);
    assert_eq!(s.data_end(DataOutcome::TempFail).code, 451);
    assert_eq!(code(&send(&mut s, "QUIT")), 221);
    assert!(matches!(send(&mut s, "QUIT"), Action::Close(_)));
}

#[test]
fn out_of_order_is_503() {
    let mut s = State::new(cfg());
    for l in ["MAIL FROM:<a@b.test>", "RCPT TO:<demo@mx.test>", "DATA"] {
        let a = send(&mut s, l);
        assert_eq!((code(&a), status(&a)), (503, Some("5.5.1")), "{l}");
    }
    send(&mut s, "HELO c");
    assert_eq!(code(&send(&mut s, "RCPT TO:<demo@mx.test>")), 503);
    assert_eq!(code(&send(&mut s, "DATA")), 503);
    assert_eq!(code(&send(&mut s, "MAIL FROM:<a@b.test>")), 250);
    assert_eq!(code(&send(&mut s, "MAIL FROM:<a@b.test>")), 503);
    assert_eq!(code(&send(&mut s, "DATA")), 503);
    // Pipelined RCPTs all refused: DATA gets 554 no valid recipients.
    assert_eq!(code(&send(&mut s, "RCPT TO:<x@mx.test>")), 550);
    assert_eq!(code(&send(&mut s, "DATA")), 554);
    assert_eq!(code(&send(&mut s, "RSET")), 250);
    assert_eq!(code(&send(&mut s, "RCPT TO:<demo@mx.test>")), 503);
    // HELO resets the transaction too.
    send(&mut s, "MAIL FROM:<a@b.test>");
    send(&mut s, "EHLO again");
    assert_eq!(code(&send(&mut s, "RCPT TO:<demo@mx.test>")), 503);
}

#[test]
fn esmtp_params_need_ehlo() {
    let mut s = State::new(cfg());
    send(&mut s, "HELO c");
    assert_eq!(code(&send(&mut s, "MAIL FROM:<a@b.test> SIZE=10")), 555);
    assert_eq!(s.protocol(), "SMTP");
}

#[test]
fn relay_rules() {
    // Port 25, outside relay_from: local domains only.
    let mut s = State::new(cfg());
    send(&mut s, "EHLO c");
    send(&mut s, "MAIL FROM:<a@b.test>");
    let a = send(&mut s, "RCPT TO:<x@far.test>");
    assert_eq!((code(&a), status(&a)), (554, Some("5.7.1")));
    assert_eq!(code(&send(&mut s, "RCPT TO:<postmaster>")), 550); // fake has no postmaster
                                                                  // relay_from: remote recipients are accepted.
    let mut s = State::new(Config {
        relay_client: true,
        ..cfg()
    });
    send(&mut s, "EHLO c");
    send(&mut s, "MAIL FROM:<a@b.test>");
    assert_eq!(code(&send(&mut s, "RCPT TO:<x@far.test>")), 250);
    assert_eq!(
        s.transaction().unwrap().recipients[0].targets,
        vec![Target::Remote("x@far.test".into())]
    );
    // Authenticated: relaying allowed.
    let mut s = State::new(Config {
        loopback: true,
        ..cfg()
    });
    send(&mut s, "EHLO c");
    assert!(matches!(
        send(&mut s, "AUTH PLAIN AGRlbW8AZGVtbw=="),
        Action::Authenticate { .. }
    ));
    assert_eq!(code(&s.auth_result(Ok(Some("demo".into())))), 235);
    send(&mut s, "MAIL FROM:<a@b.test>");
    assert_eq!(code(&send(&mut s, "RCPT TO:<x@far.test>")), 250);
    assert_eq!(s.protocol(), "ESMTPA");
}

#[test]
fn submission_requires_auth() {
    let mut s = State::new(Config {
        submission: true,
        loopback: true,
        relay_client: true,
        ..cfg()
    });
    send(&mut s, "EHLO c");
    let a = send(&mut s, "MAIL FROM:<a@b.test>");
    assert_eq!((code(&a), status(&a)), (530, Some("5.7.0")));
    send(&mut s, "AUTH LOGIN");
    assert_eq!(code(&s.auth_line("ZGVtbw==")), 334);
    assert_eq!(
        s.auth_line("ZGVtbw=="),
        Action::Authenticate {
            user: "demo".into(),
            password: "demo".into()
        }
    );
    s.auth_result(Ok(Some("demo".into())));
    assert_eq!(code(&send(&mut s, "MAIL FROM:<a@b.test>")), 250);
}

#[test]
fn size_limits() {
    let mut s = State::new(cfg());
    let a = send(&mut s, "EHLO c");
    assert!(ehlo_lines(&a).contains(&"SIZE 1000".to_string()));
    let a = send(&mut s, "MAIL FROM:<a@b.test> SIZE=1001");
    assert_eq!((code(&a), status(&a)), (552, Some("5.3.4")));
    assert_eq!(code(&send(&mut s, "MAIL FROM:<a@b.test> SIZE=1000")), 250);
    // The actual size is checked by the data parser; its refusal is relayed.
    send(&mut s, "RCPT TO:<demo@mx.test>");
    send(&mut s, "DATA");
    let r = s.data_end(DataOutcome::Refused(Reply::new(552, "5.3.4", "too big")));
    assert_eq!(r.code, 552);
    assert!(s.transaction().is_none());
}

#[test]
fn too_many_recipients() {
    let mut s = State::new(cfg());
    send(&mut s, "EHLO c");
    send(&mut s, "MAIL FROM:<a@b.test>");
    for _ in 0..3 {
        assert_eq!(code(&send(&mut s, "RCPT TO:<demo@mx.test>")), 250);
    }
    let a = send(&mut s, "RCPT TO:<demo@mx.test>");
    assert_eq!((code(&a), status(&a)), (452, Some("4.5.3")));
}

#[test]
fn ehlo_advertises() {
    let mut s = State::new(cfg());
    let l = ehlo_lines(&send(&mut s, "EHLO c"));
    for ext in [
        "PIPELINING",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "SMTPUTF8",
        "DSN",
    ] {
        assert!(l.contains(&ext.to_string()), "{ext}");
    }
    // No AUTH in the clear from a remote client.
    assert!(!l.iter().any(|x| x.starts_with("AUTH")));
    let a = send(&mut s, "AUTH PLAIN AGRlbW8AZGVtbw==");
    assert_eq!((code(&a), status(&a)), (538, Some("5.7.11")));
    // After STARTTLS: AUTH offered, STARTTLS no longer.
    assert!(matches!(send(&mut s, "STARTTLS"), Action::StartTls(_)));
    s.tls_started();
    assert_eq!(code(&send(&mut s, "MAIL FROM:<a@b.test>")), 503); // EHLO forgotten
    let l = ehlo_lines(&send(&mut s, "EHLO c"));
    assert!(l.contains(&"AUTH PLAIN LOGIN".to_string()));
    assert!(!l.contains(&"STARTTLS".to_string()));
    assert_eq!(code(&send(&mut s, "STARTTLS")), 503);
    assert_eq!(s.protocol(), "ESMTPS");
    // Without a certificate there is no STARTTLS.
    let mut s = State::new(Config {
        tls_available: false,
        ..cfg()
    });
    let l = ehlo_lines(&send(&mut s, "EHLO c"));
    assert!(!l.contains(&"STARTTLS".to_string()));
    assert_eq!(code(&send(&mut s, "STARTTLS")), 502);
}

#[test]
fn auth_failures_and_aborts() {
    let mut s = State::new(Config {
        implicit_tls: true,
        ..cfg()
    });
    assert_eq!(code(&send(&mut s, "AUTH PLAIN")), 503); // before EHLO
    send(&mut s, "EHLO c");
    assert_eq!(code(&send(&mut s, "AUTH CRAM-MD5")), 504);
    assert_eq!(code(&send(&mut s, "AUTH PLAIN")), 334);
    assert!(s.awaiting_auth_line());
    assert_eq!(code(&s.auth_line("*")), 501);
    assert!(!s.awaiting_auth_line());
    assert_eq!(code(&send(&mut s, "AUTH PLAIN !!!")), 501);
    for _ in 0..2 {
        send(&mut s, "AUTH PLAIN AGRlbW8AYmFk");
        let a = s.auth_result(Ok(None));
        assert_eq!((code(&a), status(&a)), (535, Some("5.7.8")));
    }
    assert_eq!(code(&s.auth_result(Err(()))), 454);
    send(&mut s, "AUTH PLAIN AGRlbW8AYmFk");
    assert!(matches!(s.auth_result(Ok(None)), Action::Close(_)));
    // authzid different from the user is refused.
    let mut s = State::new(Config {
        implicit_tls: true,
        ..cfg()
    });
    send(&mut s, "EHLO c");
    let resp = sasl::b64_encode(b"root\0demo\0demo");
    assert_eq!(code(&send(&mut s, &format!("AUTH PLAIN {resp}"))), 535);
    // Already authenticated / inside a transaction.
    send(&mut s, "AUTH PLAIN AGRlbW8AZGVtbw==");
    s.auth_result(Ok(Some("demo".into())));
    assert_eq!(code(&send(&mut s, "AUTH PLAIN AGRlbW8AZGVtbw==")), 503);
    assert_eq!(s.protocol(), "ESMTPSA");
}

#[test]
fn vrfy_expn() {
    let mut s = State::new(cfg());
    assert_eq!(code(&send(&mut s, "VRFY demo")), 252);
    assert_eq!(code(&send(&mut s, "EXPN staff")), 502);
    let mut s = State::new(Config {
        vrfy: true,
        expn: true,
        ..cfg()
    });
    assert_eq!(
        send(&mut s, "VRFY <demo@mx.test>"),
        Action::Verify {
            local: "demo".into(),
            expand: false
        }
    );
    assert_eq!(code(&send(&mut s, "VRFY x@far.test")), 252);
    let r = s.verify_resolved(
        "demo",
        false,
        Resolution::Targets(vec![Target::Local("demo".into())]),
    );
    assert_eq!(r.to_string(), "250 2.1.5 <demo@mx.test>\r\n");
    assert_eq!(s.verify_resolved("x", false, Resolution::Unknown).code, 550);
    let r = s.verify_resolved(
        "staff",
        true,
        Resolution::Targets(vec![
            Target::Local("a".into()),
            Target::Remote("b@far.test".into()),
        ]),
    );
    assert_eq!(
        r.to_string(),
        "250-2.1.5 <a@mx.test>\r\n250 2.1.5 <b@far.test>\r\n"
    );
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let mut s = State::new(cfg());
    send(&mut s, "EHLO c");
    assert_eq!(code(&send(&mut s, "MAIL FROM:<jöe@b.test>")), 553);
    assert_eq!(code(&send(&mut s, "MAIL FROM:<joe@b.test>")), 250);
    assert_eq!(code(&send(&mut s, "RCPT TO:<dëmo@mx.test>")), 553);
    send(&mut s, "RSET");
    assert_eq!(code(&send(&mut s, "MAIL FROM:<jöe@b.test> SMTPUTF8")), 250);
    assert_eq!(code(&send(&mut s, "RCPT TO:<dëmo@mx.test>")), 550);
    assert_eq!(s.protocol(), "UTF8SMTP");
}

#[test]
fn too_many_errors_close() {
    let mut s = State::new(cfg());
    for _ in 0..9 {
        assert_eq!(code(&send(&mut s, "BOGUS")), 500);
    }
    assert!(matches!(send(&mut s, "BOGUS"), Action::Close(_)));
    let mut s = State::new(cfg());
    assert_eq!(code(&s.line_too_long()), 500);
}

#[test]
fn discard_only_recipients() {
    let mut s = State::new(cfg());
    send(&mut s, "EHLO c");
    send(&mut s, "MAIL FROM:<a@b.test>");
    assert!(matches!(
        send(&mut s, "RCPT TO:<nobody@mx.test>"),
        Action::Reply(_)
    ));
    let mut s = State::new(cfg());
    send(&mut s, "EHLO c");
    send(&mut s, "MAIL FROM:<a@b.test>");
    let Action::Lookup { local, .. } = s.handle(parse(b"RCPT TO:<\"no body\"@mx.test>").unwrap())
    else {
        panic!()
    };
    assert_eq!(local, "no body");
    s.rcpt_resolved(Resolution::Targets(vec![Target::Discard]));
    assert_eq!(s.transaction().unwrap().deliverable(), 0);
    assert_eq!(
        s.transaction().unwrap().recipients[0].address,
        "\"no body\"@mx.test"
    );
}

#[test]
fn own_address_literal_is_local() {
    let mut s = State::new(Config {
        local_domains: vec!["mx.test".into(), "[127.0.0.1]".into()],
        ..cfg()
    });
    send(&mut s, "EHLO c");
    send(&mut s, "MAIL FROM:<a@b.test>");
    assert_eq!(code(&send(&mut s, "RCPT TO:<demo@[127.0.0.1]>")), 250);
    assert_eq!(code(&send(&mut s, "RCPT TO:<demo@[127.0.0.2]>")), 554);
}

fn lmtp_cfg() -> Config {
    Config {
        lmtp: true,
        relay_client: true,
        loopback: true,
        ..cfg()
    }
}

#[test]
fn lmtp_greets_with_lhlo_only() {
    let mut s = State::new(lmtp_cfg());
    assert_eq!(code(&send(&mut s, "HELO client.test")), 500);
    assert_eq!(code(&send(&mut s, "EHLO client.test")), 500);
    let lines = ehlo_lines(&send(&mut s, "LHLO client.test"));
    assert!(lines.contains(&"PIPELINING".to_string()));
    assert!(!lines.iter().any(|l| l.starts_with("AUTH")));
    assert_eq!(s.protocol(), "LMTP");
    // And SMTP does not know LHLO.
    let mut smtp = State::new(cfg());
    assert_eq!(code(&send(&mut smtp, "LHLO client.test")), 500);
}

#[test]
fn lmtp_never_relays_and_answers_per_recipient() {
    let mut s = State::new(lmtp_cfg());
    send(&mut s, "LHLO client.test");
    assert_eq!(code(&send(&mut s, "MAIL FROM:<a@far.test>")), 250);
    // A relay client on SMTP, but LMTP delivers only here.
    let a = send(&mut s, "RCPT TO:<x@far.test>");
    assert_eq!((code(&a), status(&a)), (554, Some("5.7.1")));
    assert_eq!(code(&send(&mut s, "RCPT TO:<demo@mx.test>")), 250);
    assert_eq!(code(&send(&mut s, "RCPT TO:<nobody@mx.test>")), 550);
    assert_eq!(code(&send(&mut s, "RCPT TO:<demo@localhost>")), 250);
    assert_eq!(send(&mut s, "DATA"), Action::BeginData);
    s.data_start();
    let replies = s.lmtp_data_end(DataOutcome::PerRecipient(vec![
        Reply::new(250, "2.0.0", "delivered"),
        Reply::new(452, "4.2.2", "over quota"),
    ]));
    assert_eq!(
        replies.iter().map(|r| r.code).collect::<Vec<_>>(),
        vec![250, 452]
    );
    assert!(s.transaction().is_none());
    // A message lost as a whole: the same reply for each recipient.
    send(&mut s, "MAIL FROM:<a@far.test>");
    send(&mut s, "RCPT TO:<demo@mx.test>");
    send(&mut s, "RCPT TO:<demo@localhost>");
    send(&mut s, "DATA");
    s.data_start();
    let replies = s.lmtp_data_end(DataOutcome::TempFail);
    assert_eq!(replies.len(), 2);
    assert!(replies.iter().all(|r| r.code == 451));
    // Too few outcomes are made up as temporary failures, never dropped.
    send(&mut s, "MAIL FROM:<a@far.test>");
    send(&mut s, "RCPT TO:<demo@mx.test>");
    send(&mut s, "RCPT TO:<demo@localhost>");
    send(&mut s, "DATA");
    s.data_start();
    let replies = s.lmtp_data_end(DataOutcome::PerRecipient(vec![Reply::new(
        250, "2.0.0", "ok",
    )]));
    assert_eq!(replies[1].code, 451);
    let replies_q = {
        send(&mut s, "MAIL FROM:<a@far.test>");
        send(&mut s, "RCPT TO:<demo@mx.test>");
        send(&mut s, "DATA");
        s.data_start();
        s.lmtp_data_end(DataOutcome::Queued("Q1".into()))
    };
    assert_eq!(replies_q.len(), 1);
    assert!(replies_q[0].to_string().contains("<demo@mx.test>"));
}

#[test]
fn lmtp_refuses_auth() {
    let mut s = State::new(lmtp_cfg());
    send(&mut s, "LHLO client.test");
    assert_eq!(code(&send(&mut s, "AUTH PLAIN AGRlbW8AZGVtbw==")), 538);
}
