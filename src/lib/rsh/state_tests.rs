use super::*;

fn field(s: &[u8]) -> Input {
    Input::Field(s.to_vec())
}

fn message(a: &Action) -> String {
    match a {
        Action::Refuse { message, .. } => String::from_utf8_lossy(message).into_owned(),
        other => panic!("not a refusal: {other:?}"),
    }
}

/// The whole handshake of `rsh -l alice host ls` from bob, with a stderr
/// connection to port 1022.
#[test]
fn a_full_handshake_with_a_stderr_connection() {
    let mut m = Machine::new(true);
    assert_eq!(m.start(1023), Action::ReadField { max: PORT_MAX });
    assert_eq!(m.handle(field(b"1022")), Action::ConnectBack(1022));
    assert_eq!(
        m.handle(Input::BackConnected(true)),
        Action::ReadField { max: NAME_MAX }
    );
    assert_eq!(m.handle(field(b"bob")), Action::ReadField { max: NAME_MAX });
    assert_eq!(
        m.handle(field(b"alice")),
        Action::ReadField { max: COMMAND_MAX }
    );
    assert_eq!(
        m.handle(field(b"ls")),
        Action::AskTrust {
            ruser: "bob".into(),
            luser: "alice".into()
        }
    );
    assert_eq!(
        m.handle(Input::Trust(Answer::Granted)),
        Action::Start(Request {
            stderr_port: Some(1022),
            ruser: "bob".into(),
            luser: "alice".into(),
            command: b"ls".to_vec(),
        })
    );
    // Nothing after the start.
    assert!(matches!(m.handle(field(b"x")), Action::Close { .. }));
}

#[test]
fn no_stderr_connection() {
    for port in [&b""[..], b"0"] {
        let mut m = Machine::new(true);
        m.start(600);
        assert_eq!(m.handle(field(port)), Action::ReadField { max: NAME_MAX });
    }
}

#[test]
fn privileged_ports_are_required_when_asked() {
    let mut m = Machine::new(true);
    let a = m.start(40000);
    assert_eq!(message(&a), "\x01Permission denied.\n");
    for port in [511, 1024] {
        assert!(matches!(
            Machine::new(true).start(port),
            Action::Refuse { .. }
        ));
    }
    // The stderr port too.
    let mut m = Machine::new(true);
    m.start(1000);
    assert!(message(&m.handle(field(b"40000"))).contains("not reserved"));
    let mut m = Machine::new(true);
    m.start(1000);
    assert!(message(&m.handle(field(b"511"))).contains("not reserved"));
    // Without the requirement, any port.
    let mut m = Machine::new(false);
    assert_eq!(m.start(40000), Action::ReadField { max: PORT_MAX });
    assert_eq!(m.handle(field(b"40001")), Action::ConnectBack(40001));
}

#[test]
fn bad_ports_are_refused() {
    for bad in [&b"65536"[..], b"12a", b"-5", b" 1"] {
        let mut m = Machine::new(false);
        m.start(1000);
        assert_eq!(
            message(&m.handle(field(bad))),
            "\x01rshd: bad stderr port.\n"
        );
    }
    let mut m = Machine::new(false);
    m.start(1000);
    assert_eq!(
        message(&m.handle(Input::TooLong)),
        "\x01rshd: bad stderr port.\n"
    );
}

#[test]
fn names_are_checked() {
    let start = |m: &mut Machine| {
        m.start(1000);
        m.handle(field(b""));
    };
    let mut m = Machine::new(true);
    start(&mut m);
    assert_eq!(
        message(&m.handle(field(b"-froot"))),
        "\x01Permission denied.\n"
    );
    let mut m = Machine::new(true);
    start(&mut m);
    m.handle(field(b"bob"));
    assert_eq!(
        message(&m.handle(field(b"-froot"))),
        "\x01Permission denied.\n"
    );
    let mut m = Machine::new(true);
    start(&mut m);
    assert_eq!(
        message(&m.handle(Input::TooLong)),
        "\x01rshd: client user too long.\n"
    );
    let mut m = Machine::new(true);
    start(&mut m);
    assert_eq!(
        message(&m.handle(field(&[b'a'; 33]))),
        "\x01rshd: client user too long.\n"
    );
    let mut m = Machine::new(true);
    start(&mut m);
    m.handle(field(b"bob"));
    m.handle(field(b"alice"));
    assert_eq!(
        message(&m.handle(Input::TooLong)),
        "\x01rshd: command too long.\n"
    );
}

#[test]
fn refusals_and_failures() {
    let ready = || {
        let mut m = Machine::new(true);
        m.start(1000);
        m.handle(field(b""));
        m.handle(field(b"bob"));
        m.handle(field(b"alice"));
        m.handle(field(b"id"));
        m
    };
    assert_eq!(
        message(&ready().handle(Input::Trust(Answer::Denied))),
        "\x01Permission denied.\n"
    );
    assert!(message(&ready().handle(Input::Trust(Answer::Unavailable))).contains("try again"));
    let mut m = Machine::new(true);
    m.start(1000);
    m.handle(field(b"1000"));
    assert!(message(&m.handle(Input::BackConnected(false))).contains("stderr port"));
    let mut m = Machine::new(true);
    m.start(1000);
    assert!(message(&m.handle(Input::TimedOut)).contains("timed out"));
    let mut m = Machine::new(true);
    m.start(1000);
    assert!(matches!(m.handle(Input::Eof), Action::Close { .. }));
}

#[test]
fn answers_out_of_turn_close() {
    let mut m = Machine::new(true);
    m.start(1000);
    assert!(matches!(
        m.handle(Input::Trust(Answer::Granted)),
        Action::Close { .. }
    ));
    let mut m = Machine::new(true);
    m.start(1000);
    assert!(matches!(
        m.handle(Input::BackConnected(true)),
        Action::Close { .. }
    ));
}
