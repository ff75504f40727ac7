use super::*;
use crate::ftp::command::parse;

fn cfg() -> Config {
    Config {
        anonymous: true,
        anon_upload_dir: Some("/incoming".into()),
        port_enable: true,
        tls: true,
        tls_active: false,
        login_attempts: 3,
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:21".parse().unwrap(),
        umask: 0o22,
        idle: 300,
    }
}

fn run(s: &mut State, line: &str) -> Action {
    match parse(line.as_bytes()) {
        Ok(c) => s.handle(c),
        Err(e) => Action::Reply(parse_error_reply(&e)),
    }
}

fn code(a: &Action) -> u16 {
    match a {
        Action::Reply(r) | Action::Close(r) => r.code,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn logged_in(anon: bool) -> State {
    let mut s = State::new(cfg());
    if anon {
        assert!(matches!(
            run(&mut s, "USER anonymous"),
            Action::Reply(Reply { code: 331, .. })
        ));
        assert_eq!(
            run(&mut s, "PASS me@example.org"),
            Action::AnonLogin {
                ident: "me@example.org".into()
            }
        );
        assert_eq!(s.login_ok("/").code, 230);
    } else {
        assert_eq!(code(&run(&mut s, "USER demo")), 331);
        assert_eq!(
            run(&mut s, "PASS demo"),
            Action::Login {
                user: "demo".into(),
                pass: "demo".into()
            }
        );
        assert_eq!(s.login_ok("/home/demo").code, 230);
        assert_eq!(s.cwd, "/home/demo");
    }
    s
}

#[test]
fn reply_wire_forms() {
    assert_eq!(Reply::new(200, "ok").wire(), "200 ok\r\n");
    assert_eq!(
        Reply::new(211, "Features:\n EPSV\nMDTM\nEnd").wire(),
        "211-Features:\r\n EPSV\r\n MDTM\r\n211 End\r\n"
    );
}

#[test]
fn login_sequence_and_order() {
    let mut s = State::new(cfg());
    assert_eq!(code(&run(&mut s, "PASS x")), 503);
    assert_eq!(code(&run(&mut s, "PWD")), 530);
    assert_eq!(code(&run(&mut s, "RETR x")), 530);
    assert_eq!(code(&run(&mut s, "PASV")), 530);
    assert_eq!(code(&run(&mut s, "CWD /")), 530);
    assert_eq!(code(&run(&mut s, "SYST")), 215);
    assert_eq!(code(&run(&mut s, "NOOP")), 200);
    assert_eq!(code(&run(&mut s, "FEAT")), 211);
    assert_eq!(code(&run(&mut s, "ACCT x")), 503);
    let mut s = logged_in(false);
    assert_eq!(code(&run(&mut s, "USER other")), 530);
    assert_eq!(code(&run(&mut s, "PASS x")), 230);
    assert_eq!(code(&run(&mut s, "ACCT x")), 202);
    assert!(!s.anonymous());
}

#[test]
fn failed_logins_close_after_limit() {
    let mut s = State::new(cfg());
    for i in 1..=3 {
        run(&mut s, "USER demo");
        assert!(matches!(run(&mut s, "PASS bad"), Action::Login { .. }));
        let a = s.login_failed();
        assert_eq!(code(&a), 530);
        assert_eq!(matches!(a, Action::Close(_)), i == 3, "attempt {i}");
    }
}

#[test]
fn anonymous_only_when_enabled() {
    let mut c = cfg();
    c.anonymous = false;
    let mut s = State::new(c);
    run(&mut s, "USER anonymous");
    assert!(matches!(run(&mut s, "PASS x"), Action::Login { .. }));
    let mut s = State::new(cfg());
    run(&mut s, "USER FTP");
    assert!(matches!(run(&mut s, "PASS x"), Action::AnonLogin { .. }));
}

#[test]
fn anonymous_is_read_only_except_uploads() {
    let mut s = logged_in(true);
    assert!(s.anonymous());
    for l in [
        "MKD x",
        "RMD x",
        "DELE x",
        "RNFR x",
        "SITE CHMOD 777 x",
        "APPE x",
    ] {
        assert_eq!(code(&run(&mut s, l)), 550, "{l}");
    }
    run(&mut s, "PASV");
    s.passive_opened();
    assert_eq!(code(&run(&mut s, "STOR x")), 550);
    assert_eq!(code(&run(&mut s, "STOR /incoming/../x")), 550);
    match run(&mut s, "STOR /incoming/up.bin") {
        Action::Transfer(t) => {
            assert_eq!(t.path, "/incoming/up.bin");
            assert!(t.exclusive);
        }
        a => panic!("{a:?}"),
    }
    s.passive_opened();
    for l in [
        "RETR /incoming/up.bin",
        "LIST /incoming",
        "NLST incoming",
        "MLSD /incoming",
        "SIZE /incoming/up.bin",
        "MDTM incoming/up.bin",
        "MLST /incoming/up.bin",
        "STAT /incoming",
    ] {
        assert_eq!(code(&run(&mut s, l)), 550, "{l}");
    }
    assert_eq!(run(&mut s, "CWD incoming"), Action::Cwd("/incoming".into()));
    s.cwd_ok("/incoming");
    assert_eq!(code(&run(&mut s, "LIST")), 550);
    assert!(matches!(run(&mut s, "STOU"), Action::Transfer(_)));
    s.passive_opened();
    run(&mut s, "REST 10");
    assert_eq!(code(&run(&mut s, "STOR resume")), 550);
}

#[test]
fn transfers_need_a_data_connection() {
    let mut s = logged_in(false);
    assert_eq!(code(&run(&mut s, "RETR f")), 425);
    assert_eq!(code(&run(&mut s, "LIST")), 425);
    assert_eq!(run(&mut s, "PASV"), Action::OpenPassive { extended: false });
    s.passive_opened();
    run(&mut s, "TYPE I");
    run(&mut s, "REST 100");
    match run(&mut s, "RETR f") {
        Action::Transfer(t) => {
            assert_eq!(t.kind, Kind::Retr);
            assert_eq!(t.path, "/home/demo/f");
            assert_eq!(t.offset, 100);
            assert!(!t.ascii);
            assert_eq!(t.data, DataSetup::Passive);
        }
        a => panic!("{a:?}"),
    }
    // The data setup and the restart offset are used up.
    assert_eq!(code(&run(&mut s, "RETR f")), 425);
    assert_eq!(s.rest(), 0);
}

#[test]
fn active_mode_and_bounce_protection() {
    let mut s = logged_in(false);
    assert_eq!(
        run(&mut s, "PORT 127,0,0,1,200,10"),
        Action::Port("127.0.0.1:51210".parse().unwrap())
    );
    assert_eq!(
        s.data_setup(),
        DataSetup::Active("127.0.0.1:51210".parse().unwrap())
    );
    assert_eq!(code(&run(&mut s, "PORT 10,0,0,1,200,10")), 500);
    assert_eq!(code(&run(&mut s, "PORT 127,0,0,1,0,21")), 500);
    assert_eq!(code(&run(&mut s, "PORT 127,0,0,2,200,10")), 500);
    assert_eq!(code(&run(&mut s, "EPRT |1|127.0.0.1|1023|")), 500);
    assert_eq!(code(&run(&mut s, "EPRT |2|::1|5000|")), 522);
    assert_eq!(code(&run(&mut s, "EPRT |9|x|5000|")), 522);
    assert!(matches!(
        run(&mut s, "EPRT |1|127.0.0.1|5000|"),
        Action::Port(_)
    ));
    let mut c = cfg();
    c.port_enable = false;
    let mut s = State::new(c);
    run(&mut s, "USER demo");
    run(&mut s, "PASS demo");
    s.login_ok("/");
    assert_eq!(code(&run(&mut s, "PORT 127,0,0,1,200,10")), 502);
}

#[test]
fn ipv6_sessions() {
    let mut c = cfg();
    c.peer = "[::1]:40000".parse().unwrap();
    c.local = "[::1]:21".parse().unwrap();
    let mut s = State::new(c);
    run(&mut s, "USER demo");
    run(&mut s, "PASS demo");
    s.login_ok("/");
    assert_eq!(code(&run(&mut s, "PASV")), 500);
    assert_eq!(code(&run(&mut s, "EPSV 1")), 522);
    assert_eq!(
        run(&mut s, "EPSV 2"),
        Action::OpenPassive { extended: true }
    );
    assert!(matches!(run(&mut s, "EPRT |2|::1|5000|"), Action::Port(_)));
    assert_eq!(code(&run(&mut s, "EPRT |1|127.0.0.1|5000|")), 522);
    assert_eq!(code(&run(&mut s, "PORT 127,0,0,1,200,10")), 500);
}

#[test]
fn epsv_all_locks_out_other_setups() {
    let mut s = logged_in(false);
    assert_eq!(code(&run(&mut s, "EPSV ALL")), 200);
    assert_eq!(code(&run(&mut s, "PORT 127,0,0,1,200,10")), 503);
    assert_eq!(code(&run(&mut s, "EPRT |1|127.0.0.1|5000|")), 503);
    assert_eq!(code(&run(&mut s, "PASV")), 503);
    assert_eq!(run(&mut s, "EPSV"), Action::OpenPassive { extended: true });
}

#[test]
fn rename_needs_rnfr_right_before() {
    let mut s = logged_in(false);
    assert_eq!(code(&run(&mut s, "RNTO b")), 503);
    assert_eq!(run(&mut s, "RNFR a"), Action::Rnfr("/home/demo/a".into()));
    s.rnfr_ok("/home/demo/a");
    assert_eq!(
        run(&mut s, "RNTO b"),
        Action::Rename {
            from: "/home/demo/a".into(),
            to: "/home/demo/b".into()
        }
    );
    run(&mut s, "RNFR a");
    s.rnfr_ok("/home/demo/a");
    run(&mut s, "NOOP");
    assert_eq!(code(&run(&mut s, "RNTO b")), 503);
}

#[test]
fn directories_and_paths() {
    let mut s = logged_in(false);
    assert_eq!(code(&run(&mut s, "PWD")), 257);
    assert_eq!(run(&mut s, "CDUP"), Action::Cwd("/home".into()));
    assert_eq!(run(&mut s, "CWD ../../../etc"), Action::Cwd("/etc".into()));
    assert_eq!(run(&mut s, "MKD new"), Action::Mkd("/home/demo/new".into()));
    assert_eq!(run(&mut s, "RMD /x/../y"), Action::Rmd("/y".into()));
    assert_eq!(run(&mut s, "DELE a"), Action::Dele("/home/demo/a".into()));
    assert_eq!(run(&mut s, "SIZE a"), Action::Size("/home/demo/a".into()));
    assert_eq!(run(&mut s, "MDTM a"), Action::Mdtm("/home/demo/a".into()));
    assert_eq!(
        run(&mut s, "MFMT 19700101000100 a"),
        Action::Mfmt(60, "/home/demo/a".into())
    );
    assert_eq!(run(&mut s, "MLST"), Action::Mlst("/home/demo".into()));
    assert_eq!(run(&mut s, "STAT ."), Action::StatPath("/home/demo".into()));
    assert_eq!(run(&mut s, "STAT"), Action::StatServer);
    assert_eq!(
        run(&mut s, "SITE CHMOD 600 a"),
        Action::Chmod(0o600, "/home/demo/a".into())
    );
    s.cwd_ok("/a\"b");
    match run(&mut s, "PWD") {
        Action::Reply(r) => assert_eq!(r.text, "\"/a\"\"b\" is the current directory."),
        a => panic!("{a:?}"),
    }
}

#[test]
fn types_modes_and_misc() {
    let mut s = logged_in(false);
    assert_eq!(code(&run(&mut s, "TYPE I")), 200);
    assert_eq!(s.dtype, DataType::Image);
    assert_eq!(code(&run(&mut s, "TYPE A")), 200);
    assert_eq!(code(&run(&mut s, "TYPE L 8")), 200);
    assert_eq!(code(&run(&mut s, "TYPE E")), 504);
    assert_eq!(code(&run(&mut s, "MODE S")), 200);
    assert_eq!(code(&run(&mut s, "MODE B")), 200);
    // Restarts are for stream mode (no restart markers are sent).
    assert_eq!(code(&run(&mut s, "REST 5")), 504);
    assert_eq!(code(&run(&mut s, "MODE C")), 200);
    assert_eq!(code(&run(&mut s, "MODE X")), 501);
    assert_eq!(code(&run(&mut s, "STRU R")), 200);
    assert_eq!(code(&run(&mut s, "STRU P")), 200);
    assert_eq!(code(&run(&mut s, "STRU F")), 200);
    assert_eq!(code(&run(&mut s, "MODE S")), 200);
    assert_eq!(code(&run(&mut s, "ALLO 100")), 202);
    assert_eq!(code(&run(&mut s, "REST 5")), 350);
    assert_eq!(code(&run(&mut s, "HELP")), 214);
    assert_eq!(code(&run(&mut s, "HELP RETR")), 214);
    assert_eq!(code(&run(&mut s, "HELP XYZZ")), 502);
    assert_eq!(code(&run(&mut s, "OPTS UTF8 ON")), 200);
    assert_eq!(code(&run(&mut s, "OPTS MLST type;size;")), 200);
    assert_eq!(s.facts, vec!["type".to_string(), "size".to_string()]);
    assert_eq!(code(&run(&mut s, "SITE UMASK 027")), 200);
    assert_eq!(s.umask, 0o27);
    assert_eq!(code(&run(&mut s, "SITE UMASK")), 200);
    assert_eq!(run(&mut s, "SITE IDLE 60"), Action::SetIdle(60));
    assert_eq!(code(&run(&mut s, "SITE IDLE 5")), 501);
    assert_eq!(code(&run(&mut s, "SITE IDLE")), 200);
    assert_eq!(code(&run(&mut s, "SITE HELP")), 214);
    assert_eq!(code(&run(&mut s, "SITE EXEC x")), 504);
    assert_eq!(code(&run(&mut s, "BOGUS")), 500);
    assert_eq!(run(&mut s, "ABOR"), Action::Abor);
    assert!(matches!(
        run(&mut s, "QUIT"),
        Action::Close(Reply { code: 221, .. })
    ));
}

#[test]
fn tls_commands() {
    let mut s = State::new(cfg());
    assert_eq!(code(&run(&mut s, "PBSZ 0")), 503);
    assert_eq!(code(&run(&mut s, "PROT P")), 503);
    assert_eq!(code(&run(&mut s, "AUTH KERBEROS")), 504);
    assert_eq!(run(&mut s, "AUTH TLS"), Action::StartTls);
    s.tls_started();
    assert_eq!(code(&run(&mut s, "AUTH TLS")), 503);
    // RFC 4217: PROT only after PBSZ.
    assert_eq!(code(&run(&mut s, "PROT P")), 503);
    assert_eq!(code(&run(&mut s, "PBSZ 0")), 200);
    assert_eq!(code(&run(&mut s, "PROT S")), 536);
    assert_eq!(code(&run(&mut s, "PROT P")), 200);
    run(&mut s, "USER demo");
    run(&mut s, "PASS demo");
    s.login_ok("/");
    run(&mut s, "EPSV");
    s.passive_opened();
    match run(&mut s, "LIST") {
        Action::Transfer(t) => assert!(t.private),
        a => panic!("{a:?}"),
    }
    let mut c = cfg();
    c.tls = false;
    let mut s = State::new(c);
    assert_eq!(code(&run(&mut s, "AUTH TLS")), 502);
    match run(&mut s, "FEAT") {
        Action::Reply(r) => assert!(!r.text.contains("AUTH TLS")),
        a => panic!("{a:?}"),
    }
}

#[test]
fn stou_names_and_listings() {
    let mut s = logged_in(false);
    s.passive_opened();
    match run(&mut s, "STOU") {
        Action::Transfer(t) => {
            assert_eq!(t.kind, Kind::Stou);
            assert_eq!(t.path, "/home/demo/ftp");
        }
        a => panic!("{a:?}"),
    }
    s.passive_opened();
    match run(&mut s, "NLST -a *.txt") {
        Action::Transfer(t) => {
            assert_eq!(t.kind, Kind::Nlst { all: true });
            assert_eq!(t.path, "/home/demo/*.txt");
            assert_eq!(t.arg.as_deref(), Some("*.txt"));
        }
        a => panic!("{a:?}"),
    }
}

#[test]
fn parse_errors_have_codes() {
    let mut s = State::new(cfg());
    assert_eq!(code(&run(&mut s, "RETR")), 501);
    assert_eq!(code(&run(&mut s, "")), 500);
    assert_eq!(code(&run(&mut s, "XYZZY")), 500);
    assert_eq!(code(&run(&mut s, "TYPE E")), 504);
}

#[test]
fn site_chmod_refuses_special_bits() {
    let mut s = logged_in(false);
    for m in ["4755", "2755", "1777"] {
        assert_eq!(code(&run(&mut s, &format!("SITE CHMOD {m} f"))), 550, "{m}");
    }
    assert!(matches!(
        run(&mut s, "SITE CHMOD 644 f"),
        Action::Chmod(0o644, _)
    ));
}
