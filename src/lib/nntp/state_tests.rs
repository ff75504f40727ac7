use super::*;
use crate::nntp::command::parse;

fn cfg() -> Config {
    Config {
        hostname: "news.example".into(),
        tls_available: false,
        tls_active: false,
        loopback: false,
        max_errors: 5,
    }
}

fn reader() -> Rights {
    Rights {
        peer: None,
        read: true,
        post: true,
    }
}

fn peer() -> Rights {
    Rights {
        peer: Some("up".into()),
        read: true,
        post: false,
    }
}

fn run(s: &mut State, l: &str) -> Action {
    match parse(l.as_bytes(), 2026) {
        Ok(c) => s.handle(c),
        Err(e) => s.bad_command(e),
    }
}

fn text(a: &Action) -> String {
    match a {
        Action::Reply(b) | Action::Close(b) | Action::StartTls(b) => {
            String::from_utf8(b.clone()).unwrap()
        }
        other => panic!("not a reply: {other:?}"),
    }
}

fn code(a: &Action) -> String {
    text(a)[..3].to_string()
}

fn with_group(s: &mut State) {
    let a = run(s, "GROUP lab.test");
    assert!(matches!(a, Action::SelectGroup { .. }));
    let r = s.group_result(
        "lab.test",
        Some(Group {
            name: "lab.test".into(),
            low: 3,
            high: 9,
            count: 7,
        }),
        false,
    );
    assert_eq!(text(&r), "211 7 3 9 lab.test\r\n");
}

#[test]
fn greeting_says_whether_posting_is_allowed() {
    let s = State::new(cfg(), reader());
    assert_eq!(s.greeting("x ready"), b"200 x ready (posting ok)\r\n");
    let s = State::new(cfg(), peer());
    assert_eq!(s.greeting("x ready"), b"201 x ready (no posting)\r\n");
}

#[test]
fn capabilities_follow_rights_and_tls() {
    let mut s = State::new(cfg(), reader());
    let t = text(&run(&mut s, "CAPABILITIES"));
    assert!(t.starts_with("101 "));
    assert!(t.contains("\r\nVERSION 2\r\n") && t.contains("\r\nREADER\r\n"));
    assert!(t.contains("\r\nPOST\r\n") && !t.contains("IHAVE"));
    assert!(t.contains("\r\nAUTHINFO USER\r\n") && !t.contains("STARTTLS"));
    assert!(t.contains("OVER MSGID") && t.contains("HDR") && t.contains("NEWNEWS"));
    assert!(t.ends_with("\r\n.\r\n"));
    let mut s = State::new(cfg(), peer());
    let t = text(&run(&mut s, "CAPABILITIES"));
    assert!(t.contains("\r\nIHAVE\r\n") && t.contains("\r\nSTREAMING\r\n"));
    assert!(!t.contains("\r\nPOST\r\n"));
    // TLS offered to a remote client: AUTHINFO only after STARTTLS.
    let mut c = cfg();
    c.tls_available = true;
    let mut s = State::new(c, reader());
    let t = text(&run(&mut s, "CAPABILITIES"));
    assert!(t.contains("\r\nSTARTTLS\r\n") && t.contains("\r\nAUTHINFO\r\n"));
    assert!(!t.contains("AUTHINFO USER"));
    s.tls_started();
    let t = text(&run(&mut s, "CAPABILITIES"));
    assert!(!t.contains("STARTTLS") && t.contains("AUTHINFO USER"));
}

#[test]
fn modes() {
    let mut s = State::new(cfg(), reader());
    assert_eq!(code(&run(&mut s, "MODE READER")), "200");
    assert_eq!(code(&run(&mut s, "MODE STREAM")), "502");
    let mut s = State::new(cfg(), peer());
    assert_eq!(code(&run(&mut s, "MODE READER")), "201");
    assert_eq!(code(&run(&mut s, "MODE STREAM")), "203");
}

#[test]
fn groups_and_articles() {
    let mut s = State::new(cfg(), reader());
    assert_eq!(code(&run(&mut s, "ARTICLE 3")), "412");
    assert_eq!(code(&run(&mut s, "ARTICLE")), "412");
    assert_eq!(code(&run(&mut s, "NEXT")), "412");
    assert_eq!(code(&run(&mut s, "OVER")), "412");
    assert_eq!(code(&run(&mut s, "XOVER 1-2")), "412");
    assert_eq!(code(&run(&mut s, "LISTGROUP")), "412");
    assert_eq!(
        text(&s.group_result("no.such", None, false)),
        "411 No such newsgroup no.such\r\n"
    );
    with_group(&mut s);
    assert_eq!(
        run(&mut s, "ARTICLE"),
        Action::Article(Part::Article, Locator::Number("lab.test".into(), 3))
    );
    assert_eq!(
        run(&mut s, "HEAD 5"),
        Action::Article(Part::Head, Locator::Number("lab.test".into(), 5))
    );
    let at = Locator::Number("lab.test".into(), 5);
    assert_eq!(
        s.article_result(Part::Head, &at, Some("<5@x>")),
        b"221 5 <5@x> head\r\n"
    );
    // The current article moved to 5.
    assert_eq!(
        run(&mut s, "STAT"),
        Action::Article(Part::Stat, Locator::Number("lab.test".into(), 5))
    );
    assert_eq!(
        s.article_result(Part::Body, &at, None),
        b"423 No article with that number\r\n"
    );
    let by_id = Locator::Id("<a@b>".into());
    assert_eq!(
        run(&mut s, "BODY <a@b>"),
        Action::Article(Part::Body, by_id.clone())
    );
    assert_eq!(
        s.article_result(Part::Body, &by_id, Some("<a@b>")),
        b"222 0 <a@b> body\r\n"
    );
    assert_eq!(
        s.article_result(Part::Article, &by_id, None),
        b"430 No article with that message-id\r\n"
    );
    assert_eq!(
        s.article_result(Part::Article, &at, Some("<5@x>")),
        b"220 5 <5@x> article\r\n"
    );
    assert_eq!(
        s.article_result(Part::Stat, &at, Some("<5@x>")),
        b"223 5 <5@x> status\r\n"
    );
}

#[test]
fn last_and_next() {
    let mut s = State::new(cfg(), reader());
    with_group(&mut s);
    assert_eq!(
        run(&mut s, "NEXT"),
        Action::Step(true, "lab.test".into(), 3)
    );
    assert_eq!(
        text(&s.step_result(true, Some((4, "<4@x>".into())))),
        "223 4 <4@x> retrieved\r\n"
    );
    assert_eq!(
        run(&mut s, "LAST"),
        Action::Step(false, "lab.test".into(), 4)
    );
    assert_eq!(code(&s.step_result(false, None)), "422");
    assert_eq!(code(&s.step_result(true, None)), "421");
    // An empty group has no current article.
    let _ = s.group_result(
        "e",
        Some(Group {
            name: "e".into(),
            low: 1,
            high: 0,
            count: 0,
        }),
        false,
    );
    assert_eq!(code(&run(&mut s, "NEXT")), "420");
    assert_eq!(code(&run(&mut s, "ARTICLE")), "420");
}

#[test]
fn listgroup() {
    let mut s = State::new(cfg(), reader());
    assert_eq!(
        run(&mut s, "LISTGROUP lab.test 2-4"),
        Action::SelectGroup {
            name: "lab.test".into(),
            list: Some(Some(Range {
                low: 2,
                high: Some(4)
            }))
        }
    );
    let r = s.group_result(
        "lab.test",
        Some(Group {
            name: "lab.test".into(),
            low: 1,
            high: 4,
            count: 4,
        }),
        true,
    );
    assert_eq!(text(&r), "211 4 1 4 lab.test list follows\r\n");
    assert!(matches!(
        run(&mut s, "LISTGROUP"),
        Action::ListNumbers(_, Range { low: 0, high: None })
    ));
}

#[test]
fn over_and_hdr() {
    let mut s = State::new(cfg(), reader());
    assert_eq!(
        run(&mut s, "OVER <a@b>"),
        Action::Over(Locator::Id("<a@b>".into()), Range { low: 0, high: None })
    );
    with_group(&mut s);
    assert_eq!(
        run(&mut s, "XOVER 4-"),
        Action::Over(
            Locator::Number("lab.test".into(), 0),
            Range { low: 4, high: None }
        )
    );
    assert_eq!(
        run(&mut s, "OVER"),
        Action::Over(
            Locator::Number("lab.test".into(), 3),
            Range {
                low: 3,
                high: Some(3)
            }
        )
    );
    assert_eq!(
        run(&mut s, "XHDR subject 3-5"),
        Action::Hdr {
            field: "subject".into(),
            at: Locator::Number("lab.test".into(), 0),
            range: Range {
                low: 3,
                high: Some(5)
            },
            xhdr: true
        }
    );
}

#[test]
fn lists_and_misc() {
    let mut s = State::new(cfg(), reader());
    let t = text(&run(&mut s, "LIST OVERVIEW.FMT"));
    assert!(
        t.starts_with("215 ") && t.contains("\r\nSubject:\r\n") && t.contains("\r\n:bytes\r\n")
    );
    assert!(t.contains("Xref:full\r\n.\r\n"));
    let t = text(&run(&mut s, "LIST HEADERS"));
    assert!(t.contains("\r\n:\r\n"));
    assert!(matches!(
        run(&mut s, "LIST ACTIVE lab.*"),
        Action::List(ListKind::Active(Some(_)))
    ));
    assert!(matches!(
        run(&mut s, "NEWGROUPS 20260101 000000 GMT"),
        Action::NewGroups(_)
    ));
    assert!(matches!(
        run(&mut s, "NEWNEWS * 20260101 000000"),
        Action::NewNews(..)
    ));
    assert_eq!(run(&mut s, "DATE"), Action::Date);
    assert_eq!(State::date_reply(0), b"111 19700101000000\r\n");
    let t = text(&run(&mut s, "HELP"));
    assert!(t.starts_with("100 ") && t.ends_with("\r\n.\r\n"));
    assert_eq!(code(&run(&mut s, "QUIT")), "205");
    assert!(matches!(run(&mut s, "QUIT"), Action::Close(_)));
}

#[test]
fn reading_needs_rights() {
    let mut s = State::new(
        cfg(),
        Rights {
            peer: None,
            read: false,
            post: false,
        },
    );
    for c in [
        "GROUP a",
        "LISTGROUP",
        "ARTICLE <a@b>",
        "OVER <a@b>",
        "HDR Subject <a@b>",
        "LIST",
        "NEWGROUPS 20260101 000000",
        "NEWNEWS * 20260101 000000",
        "NEXT",
    ] {
        assert_eq!(code(&run(&mut s, c)), "480", "{c}");
    }
    assert_eq!(code(&run(&mut s, "POST")), "480");
    assert_eq!(code(&run(&mut s, "CAPABILITIES")), "101");
    assert_eq!(run(&mut s, "DATE"), Action::Date);
}

#[test]
fn posting() {
    let mut s = State::new(cfg(), reader());
    match run(&mut s, "POST") {
        Action::Receive {
            kind: Kind::Post,
            prompt: Some(p),
            permitted: true,
            ..
        } => assert!(p.starts_with(b"340 ")),
        other => panic!("{other:?}"),
    }
    let ok = s.receive_result(Kind::Post, "", &Outcome::Accepted("<a@b>".into()));
    assert_eq!(ok, b"240 Article received <a@b>\r\n");
    assert!(s
        .receive_result(Kind::Post, "", &Outcome::Refused("bad".into()))
        .starts_with(b"441 "));
    assert!(s
        .receive_result(Kind::Post, "", &Outcome::Mailed("m@x".into()))
        .starts_with(b"240 "));
    let mut s = State::new(cfg(), peer());
    assert_eq!(code(&run(&mut s, "POST")), "480");
}

#[test]
fn transit() {
    let mut s = State::new(cfg(), reader());
    assert_eq!(code(&run(&mut s, "IHAVE <a@b>")), "502");
    assert_eq!(code(&run(&mut s, "CHECK <a@b>")), "502");
    // A TAKETHIS from a client that may not feed is read, then refused.
    assert!(matches!(
        run(&mut s, "TAKETHIS <a@b>"),
        Action::Receive {
            permitted: false,
            ..
        }
    ));
    let mut s = State::new(cfg(), peer());
    assert_eq!(
        run(&mut s, "IHAVE <a@b>"),
        Action::Want(Kind::Ihave, "<a@b>".into())
    );
    assert!(matches!(
        s.want_result(Kind::Ihave, "<a@b>", Want::Yes),
        Action::Receive {
            kind: Kind::Ihave,
            prompt: Some(_),
            ..
        }
    ));
    assert_eq!(code(&s.want_result(Kind::Ihave, "<a@b>", Want::No)), "435");
    assert_eq!(
        code(&s.want_result(Kind::Ihave, "<a@b>", Want::Later)),
        "436"
    );
    assert_eq!(
        run(&mut s, "CHECK <a@b>"),
        Action::Want(Kind::Takethis, "<a@b>".into())
    );
    assert_eq!(
        text(&s.want_result(Kind::Takethis, "<a@b>", Want::Yes)),
        "238 <a@b>\r\n"
    );
    assert_eq!(
        code(&s.want_result(Kind::Takethis, "<a@b>", Want::No)),
        "438"
    );
    assert_eq!(
        code(&s.want_result(Kind::Takethis, "<a@b>", Want::Later)),
        "431"
    );
    let r = |o| String::from_utf8(s.receive_result(Kind::Takethis, "<a@b>", &o)).unwrap();
    assert_eq!(r(Outcome::Accepted("<a@b>".into())), "239 <a@b>\r\n");
    assert!(r(Outcome::Duplicate).starts_with("439 <a@b>"));
    assert!(r(Outcome::Refused("x".into())).starts_with("439 <a@b>"));
    let r = |o| String::from_utf8(s.receive_result(Kind::Ihave, "<a@b>", &o)).unwrap();
    assert!(r(Outcome::Accepted("<a@b>".into())).starts_with("235"));
    assert!(r(Outcome::Duplicate).starts_with("437"));
    assert!(r(Outcome::Refused("x".into())).starts_with("437"));
    assert!(r(Outcome::Failed("x".into())).starts_with("436"));
}

#[test]
fn authinfo() {
    let mut s = State::new(cfg(), reader());
    assert_eq!(code(&run(&mut s, "AUTHINFO PASS x")), "482");
    assert_eq!(code(&run(&mut s, "AUTHINFO USER demo")), "381");
    assert_eq!(
        run(&mut s, "AUTHINFO PASS secret word"),
        Action::Authenticate {
            user: "demo".into(),
            pass: "secret word".into()
        }
    );
    assert_eq!(code(&s.auth_result(Ok(None))), "481");
    assert_eq!(code(&s.auth_result(Err(()))), "403");
    assert_eq!(code(&s.auth_result(Ok(Some("demo".into())))), "281");
    assert_eq!(s.user(), Some("demo"));
    assert_eq!(code(&run(&mut s, "AUTHINFO USER demo")), "502");
    assert!(!text(&run(&mut s, "CAPABILITIES")).contains("AUTHINFO"));
    // With TLS offered, a remote client must use it first.
    let mut c = cfg();
    c.tls_available = true;
    let mut s = State::new(c.clone(), reader());
    assert_eq!(code(&run(&mut s, "AUTHINFO USER demo")), "483");
    assert_eq!(code(&run(&mut s, "AUTHINFO PASS demo")), "483");
    c.loopback = true;
    let mut s = State::new(c, reader());
    assert_eq!(code(&run(&mut s, "AUTHINFO USER demo")), "381");
}

#[test]
fn starttls() {
    let mut s = State::new(cfg(), reader());
    assert_eq!(code(&run(&mut s, "STARTTLS")), "502");
    let mut c = cfg();
    c.tls_available = true;
    let mut s = State::new(c, reader());
    assert!(matches!(run(&mut s, "STARTTLS"), Action::StartTls(_)));
    s.tls_started();
    assert_eq!(code(&run(&mut s, "STARTTLS")), "502");
}

#[test]
fn bad_input_and_too_many_errors() {
    let mut s = State::new(cfg(), reader());
    assert_eq!(code(&run(&mut s, "FROB")), "500");
    assert_eq!(code(&run(&mut s, "GROUP")), "501");
    assert_eq!(code(&run(&mut s, "LIST MOTD")), "503");
    assert_eq!(code(&s.line_too_long()), "501");
    // The fifth error closes.
    assert!(matches!(run(&mut s, "FROB"), Action::Close(_)));
    assert_eq!(
        State::timeout_reply(),
        b"400 Idle timeout; closing connection\r\n"
    );
}
