//! Unit tests of the server's TELNET state machine, with the exact bytes.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::linemode::{slc, Modes};
use super::state::*;
use crate::pty::{PacketControl, UrgentMark};
use crate::telnet::sub::lm;
use crate::telnet::{opt, AO, AYT, BRK, DM, DO, DONT, EC, EL, IAC, IP, SB, SE, WILL, WONT};

fn ctx() -> Context {
    Context {
        now: Instant::now(),
        modes: Modes::login_prompt(),
    }
}

/// A terminal like a fresh pty's: canonical, echo, signals, IXON with ^S/^Q.
fn pty_modes() -> Modes {
    let mut m = Modes::login_prompt();
    m.flow_control = true;
    m.chars[usize::from(slc::XON)] = Some(0x11);
    m.chars[usize::from(slc::XOFF)] = Some(0x13);
    for f in [
        slc::IP,
        slc::ABORT,
        slc::EOF,
        slc::SUSP,
        slc::EC,
        slc::EL,
        slc::XON,
        slc::XOFF,
    ] {
        m.supported |= 1 << f;
    }
    m
}

fn feed(s: &mut State, sink: &mut Recorder, bytes: &[u8]) -> usize {
    s.receive(bytes, UrgentMark::None, &ctx(), sink)
}

fn big() -> Recorder {
    Recorder::with_room(1 << 20)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A state past the opening negotiation, in the session.
fn session() -> (State, Recorder) {
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    let _ = s.start_session(&pty_modes());
    sink.network.clear();
    (s, sink)
}

#[test]
fn the_opening_asks_about_the_terminal_and_offers_echo() {
    let mut s = State::new(Phase::Login);
    let out = s.open();
    for (verb, o) in [
        (DO, opt::TTYPE),
        (DO, opt::TSPEED),
        (DO, opt::XDISPLOC),
        (DO, opt::NEW_ENVIRON),
        (DO, opt::NAWS),
        (DO, opt::LFLOW),
        (WILL, opt::ECHO),
        (WILL, opt::SGA),
        (WILL, opt::STATUS),
    ] {
        assert!(contains(&out, &[IAC, verb, o]), "{verb} {o}");
    }
    assert!(!contains(&out, &[IAC, DO, opt::LINEMODE]));
    assert!(!s.settled());
}

#[test]
fn a_full_negotiation_settles() {
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    let client = [
        &[IAC, WILL, opt::TTYPE][..],
        &[IAC, WILL, opt::TSPEED],
        &[IAC, WONT, opt::XDISPLOC],
        &[IAC, WILL, opt::NEW_ENVIRON],
        &[IAC, WILL, opt::NAWS],
        &[IAC, SB, opt::NAWS, 0, 100, 0, 40, IAC, SE],
        &[IAC, WONT, opt::LFLOW],
        &[IAC, DO, opt::ECHO],
        &[IAC, DO, opt::SGA],
        &[IAC, DONT, opt::STATUS],
    ]
    .concat();
    assert_eq!(feed(&mut s, &mut sink, &client), client.len());
    // Each acceptance is followed by its SEND.
    for o in [opt::TTYPE, opt::TSPEED, opt::NEW_ENVIRON] {
        assert!(
            contains(&sink.network, &[IAC, SB, o, 1, IAC, SE]),
            "SEND {o}"
        );
    }
    assert!(!s.settled());
    feed(&mut s, &mut sink, b"\xff\xfa\x18\x00XTERM\xff\xf0");
    feed(&mut s, &mut sink, b"\xff\xfa\x20\x0038400,38400\xff\xf0");
    feed(
        &mut s,
        &mut sink,
        b"\xff\xfa\x27\x00\x00USER\x01demo\xff\xf0",
    );
    assert!(
        !s.settled(),
        "the TTYPE cycle goes on until the list repeats"
    );
    feed(&mut s, &mut sink, b"\xff\xfa\x18\x00XTERM\xff\xf0");
    assert!(s.settled());
    assert_eq!(s.info.types, ["xterm"]);
    assert_eq!(s.info.window, Some((100, 40)));
    assert_eq!(s.info.speed, Some((38400, 38400)));
    assert_eq!(s.info.user.as_deref(), Some("demo"));
    assert!(s.local(opt::ECHO) && s.local(opt::SGA) && !s.local(opt::STATUS));
}

#[test]
fn the_ttype_cycle_keeps_the_whole_list_and_stops() {
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    feed(&mut s, &mut sink, &[IAC, WILL, opt::TTYPE]);
    for name in ["ANSI", "VT100", "VT52", "VTNT", "VTNT"] {
        let mut m = vec![IAC, SB, opt::TTYPE, 0];
        m.extend_from_slice(name.as_bytes());
        m.extend_from_slice(&[IAC, SE]);
        feed(&mut s, &mut sink, &m);
    }
    assert_eq!(s.info.types, ["ansi", "vt100", "vt52", "vtnt"]);
    let sends = sink
        .network
        .windows(6)
        .filter(|w| *w == [IAC, SB, 24, 1, IAC, SE])
        .count();
    assert_eq!(sends, 5);
    // A client that never repeats is stopped by the bound.
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    feed(&mut s, &mut sink, &[IAC, WILL, opt::TTYPE]);
    for i in 0..100 {
        let m = [
            &[IAC, SB, opt::TTYPE, 0][..],
            format!("t{i}").as_bytes(),
            &[IAC, SE],
        ]
        .concat();
        feed(&mut s, &mut sink, &m);
    }
    let sends = sink
        .network
        .windows(6)
        .filter(|w| *w == [IAC, SB, 24, 1, IAC, SE])
        .count();
    assert!(sends <= 9);
    assert_eq!(s.info.types.len(), 8);
}

#[test]
fn refused_new_environ_falls_back_to_old() {
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    feed(&mut s, &mut sink, &[IAC, WONT, opt::NEW_ENVIRON]);
    assert_eq!(sink.network, [IAC, DO, opt::OLD_ENVIRON]);
    sink.network.clear();
    feed(&mut s, &mut sink, &[IAC, WILL, opt::OLD_ENVIRON]);
    assert_eq!(sink.network, [IAC, SB, opt::OLD_ENVIRON, 1, IAC, SE]);
    // BSD's swapped VAR (1) and VALUE (0).
    feed(
        &mut s,
        &mut sink,
        b"\xff\xfa\x24\x00\x01DISPLAY\x00x:0\xff\xf0",
    );
    assert_eq!(s.info.display.as_deref(), Some("x:0"));
}

/// The environment attacks of inetutils telnetd (CVE-2026-24061 and the
/// injection class): none of them reaches the terminal information.
#[test]
fn environment_injection_is_dropped() {
    let attacks: &[&[u8]] = &[
        b"\x00\x00USER\x01-f root",
        b"\x00\x00USER\x01-froot",
        b"\x00\x03USER\x01root",
        b"\x02\x00USER\x01-f root",
        b"\x00\x00USER\x01\x02\x01-f root",
        b"\x00\x00US\x02ER\x01-f root",
        b"\x00\x00USER\x01root\x02\x00-f",
        b"\x00\x00LD_PRELOAD\x01/tmp/x.so\x00LD_LIBRARY_PATH\x01/tmp",
        b"\x00\x00GCONV_PATH\x01/tmp\x00IFS\x01/\x00BASH_ENV\x01/tmp/x",
        b"\x00\x00CREDENTIALS_DIRECTORY\x01/tmp/creds",
        b"\x00\x03TERM\x01xterm\x03DISPLAY\x01h:0",
        b"\x00\x00TERM\x01../../tmp/x\x00DISPLAY\x01$(id):0",
    ];
    for attack in attacks {
        let mut s = State::new(Phase::Login);
        let _ = s.open();
        let mut sink = big();
        feed(&mut s, &mut sink, &[IAC, WILL, opt::NEW_ENVIRON]);
        let m = [&[IAC, SB, opt::NEW_ENVIRON][..], attack, &[IAC, SE]].concat();
        assert_eq!(feed(&mut s, &mut sink, &m), m.len());
        assert_eq!(s.info.user, None, "{attack:?}");
        assert_eq!(s.info.env_term, None, "{attack:?}");
        assert_eq!(s.info.display, None, "{attack:?}");
        assert!(sink.terminal.is_empty());
    }
    // Old-environ with swapped markers, the same attack.
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    feed(
        &mut s,
        &mut sink,
        &[IAC, WONT, opt::NEW_ENVIRON, IAC, WILL, opt::OLD_ENVIRON],
    );
    feed(
        &mut s,
        &mut sink,
        b"\xff\xfa\x24\x00\x01USER\x00-f root\xff\xf0",
    );
    assert_eq!(s.info.user, None);
}

#[test]
fn environment_after_login_changes_nothing() {
    let (mut s, mut sink) = session();
    let mut s2 = State::new(Phase::Login);
    let _ = s2.open();
    feed(&mut s, &mut sink, &[IAC, WILL, opt::NEW_ENVIRON]);
    feed(
        &mut s,
        &mut sink,
        b"\xff\xfa\x27\x02\x00USER\x01root\xff\xf0",
    );
    assert_eq!(s.info.user, None);
}

#[test]
fn encrypt_and_authentication_are_refused_and_their_subnegotiations_dropped() {
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    feed(
        &mut s,
        &mut sink,
        &[IAC, WILL, opt::ENCRYPT, IAC, DO, opt::ENCRYPT],
    );
    feed(&mut s, &mut sink, &[IAC, WILL, opt::AUTHENTICATION]);
    assert_eq!(
        sink.network,
        [
            IAC,
            DONT,
            opt::ENCRYPT,
            IAC,
            WONT,
            opt::ENCRYPT,
            IAC,
            DONT,
            opt::AUTHENTICATION
        ]
    );
    // CVE-2011-4862: an ENCRYPT key id subnegotiation.
    let mut sb = vec![IAC, SB, opt::ENCRYPT, 7, 1];
    sb.extend(std::iter::repeat_n(0x41, 600));
    sb.extend_from_slice(&[IAC, SE, b'x']);
    sink.network.clear();
    assert_eq!(feed(&mut s, &mut sink, &sb), sb.len());
    assert_eq!(sink.terminal, b"x");
    assert!(sink.network.is_empty());
}

#[test]
fn over_long_subnegotiations_are_consumed() {
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    feed(&mut s, &mut sink, &[IAC, WILL, opt::NEW_ENVIRON]);
    let mut sb = vec![IAC, SB, opt::NEW_ENVIRON, 0, 0];
    sb.extend_from_slice(b"USER\x01");
    sb.extend(std::iter::repeat_n(b'a', 50_000));
    sb.extend_from_slice(&[IAC, SE, b'z']);
    let mut fed = 0;
    while fed < sb.len() {
        fed += feed(&mut s, &mut sink, &sb[fed..(fed + 1000).min(sb.len())]);
    }
    assert_eq!(sink.terminal, b"z");
    assert_eq!(s.info.user, None);
}

#[test]
fn commands_signal_and_edit() {
    let (mut s, mut sink) = session();
    feed(
        &mut s,
        &mut sink,
        &[
            IAC,
            IP,
            IAC,
            BRK,
            IAC,
            crate::telnet::ABORT,
            IAC,
            crate::telnet::SUSP,
        ],
    );
    assert_eq!(
        sink.effects,
        [
            Effect::Signal(Signal::SIGINT),
            Effect::Signal(Signal::SIGINT),
            Effect::Signal(Signal::SIGQUIT),
            Effect::Signal(Signal::SIGTSTP)
        ]
    );
    feed(
        &mut s,
        &mut sink,
        &[IAC, EC, IAC, EL, IAC, crate::telnet::XEOF],
    );
    assert_eq!(sink.terminal, [0x7f, 0x15, 0x04]);
}

/// CVE-2022-39028: IAC EC or IAC EL as the very first bytes.
#[test]
fn erase_commands_first_thing() {
    for first in [EC, EL] {
        let mut s = State::new(Phase::Login);
        let mut sink = big();
        assert_eq!(feed(&mut s, &mut sink, &[IAC, first, b'a']), 3);
        assert_eq!(sink.terminal.len(), 2);
    }
}

#[test]
fn abort_output_discards_and_synchs() {
    let (mut s, mut sink) = session();
    feed(&mut s, &mut sink, &[IAC, AO]);
    assert_eq!(sink.effects, [Effect::DiscardOutput]);
    assert_eq!(sink.network, [IAC, DM]);
    assert_eq!(sink.urgent, [(1, DM)]);
}

#[test]
fn are_you_there_is_rate_bounded() {
    let (mut s, mut sink) = session();
    let start = Instant::now();
    let mut c = ctx();
    for i in 0..1000u64 {
        c.now = start + Duration::from_millis(i);
        s.receive(&[IAC, AYT], UrgentMark::None, &c, &mut sink);
    }
    let answers = sink
        .network
        .windows(AYT_REPLY.len())
        .filter(|w| *w == AYT_REPLY)
        .count();
    assert_eq!(answers, 5);
}

#[test]
fn timing_mark_is_answered_in_order() {
    let (mut s, mut sink) = session();
    feed(
        &mut s,
        &mut sink,
        &[b'a', IAC, DO, opt::TM, IAC, DO, opt::TM],
    );
    assert_eq!(sink.terminal, b"a");
    assert_eq!(sink.network, [IAC, WILL, opt::TM, IAC, WILL, opt::TM]);
    sink.network.clear();
    feed(&mut s, &mut sink, &[IAC, WILL, opt::TM]);
    assert_eq!(sink.network, [IAC, DONT, opt::TM]);
    assert!(!s.local(opt::TM));
}

#[test]
fn window_size_changes_resize_the_terminal() {
    let (mut s, mut sink) = session();
    feed(&mut s, &mut sink, &[IAC, WILL, opt::NAWS]);
    feed(
        &mut s,
        &mut sink,
        &[IAC, SB, opt::NAWS, 0, 132, 0, 43, IAC, SE],
    );
    feed(
        &mut s,
        &mut sink,
        &[IAC, SB, opt::NAWS, 0, IAC, IAC, 0, 50, IAC, SE],
    );
    assert_eq!(
        sink.effects,
        [
            Effect::Resize {
                rows: 43,
                cols: 132
            },
            Effect::Resize {
                rows: 50,
                cols: 255
            }
        ]
    );
    // Malformed: ignored.
    feed(&mut s, &mut sink, &[IAC, SB, opt::NAWS, 0, 1, IAC, SE]);
    assert_eq!(sink.effects.len(), 2);
}

#[test]
fn cr_lf_and_cr_nul_reach_the_terminal_as_cr() {
    let (mut s, mut sink) = session();
    feed(&mut s, &mut sink, b"ls\r\n");
    feed(&mut s, &mut sink, b"pwd\r");
    feed(&mut s, &mut sink, b"\0id\r\n");
    assert_eq!(sink.terminal, b"ls\rpwd\rid\r");
    // BINARY from the client: untouched.
    feed(&mut s, &mut sink, &[IAC, WILL, opt::BINARY]);
    sink.terminal.clear();
    feed(&mut s, &mut sink, b"a\r\n\r\0\xff\xff");
    assert_eq!(sink.terminal, b"a\r\n\r\0\xff");
}

#[test]
fn output_is_escaped_for_the_wire() {
    let (mut s, mut sink) = session();
    let data = b"one\r\ntwo\rthree\xff";
    assert_eq!(s.output(data, &mut sink), data.len());
    assert_eq!(sink.network, b"one\r\ntwo\r\0three\xff\xff");
    // BINARY asked by the client: CR alone passes.
    feed(&mut s, &mut sink, &[IAC, DO, opt::BINARY]);
    sink.network.clear();
    s.output(b"a\rb", &mut sink);
    assert_eq!(sink.network, b"a\rb");
}

#[test]
fn back_pressure_keeps_data_for_later() {
    let (mut s, _) = session();
    let mut sink = Recorder::with_room(REPLY_ROOM + 100);
    let data = vec![b'x'; 5000];
    let n = feed(&mut s, &mut sink, &data);
    assert_eq!(n, REPLY_ROOM + 100);
    // Full: nothing more until the terminal takes it.
    assert_eq!(feed(&mut s, &mut sink, &data[n..]), 0);
    sink.drain();
    assert!(feed(&mut s, &mut sink, &data[n..]) > 0);
    // A command is not read without room for its answer.
    let mut sink = Recorder::with_room(REPLY_ROOM - 1);
    assert_eq!(feed(&mut s, &mut sink, &[IAC, AYT]), 0);
}

#[test]
fn flooding_commands_at_a_full_network_consumes_nothing() {
    // CVE-2020-10188: a client that sends AYT and AO without reading.
    let (mut s, _) = session();
    let mut sink = Recorder::with_room(2 * REPLY_ROOM);
    let mut flood = Vec::new();
    for _ in 0..5000 {
        flood.extend_from_slice(&[IAC, AYT, IAC, AO, IAC, DO, opt::TM]);
    }
    let mut c = ctx();
    let mut total = 0;
    for round in 0..50 {
        c.now += Duration::from_millis(round);
        let n = s.receive(&flood[total..], UrgentMark::None, &c, &mut sink);
        total += n;
        if n == 0 {
            break;
        }
    }
    // The sink never held more than its room; reading stopped.
    assert!(sink.max_seen <= sink.capacity);
    assert!(total < flood.len());
}

#[test]
fn synch_discards_data_but_keeps_commands() {
    let (mut s, mut sink) = session();
    // Everything ahead of the mark: data dropped, IP kept.
    s.receive(
        b"typed ahead\xff\xf4more",
        UrgentMark::Ahead,
        &ctx(),
        &mut sink,
    );
    assert!(sink.terminal.is_empty());
    assert_eq!(sink.effects, [Effect::Signal(Signal::SIGINT)]);
    // The mark at the DM: what follows it is kept.
    let input = b"junk\xff\xf2after";
    let at = input.iter().position(|&b| b == DM).unwrap();
    let n = s.receive(input, UrgentMark::At(at), &ctx(), &mut sink);
    assert_eq!(n, input.len());
    assert_eq!(sink.terminal, b"after");
}

#[test]
fn linemode_is_only_for_the_session() {
    let mut s = State::new(Phase::Login);
    let mut sink = big();
    feed(&mut s, &mut sink, &[IAC, WILL, opt::LINEMODE]);
    assert_eq!(sink.network, [IAC, DONT, opt::LINEMODE]);
    assert!(!s.linemode());
}

#[test]
fn linemode_mirrors_the_terminal() {
    let (mut s, mut sink) = session();
    feed(&mut s, &mut sink, &[IAC, DO, opt::ECHO, IAC, DO, opt::SGA]);
    sink.network.clear();
    // A TELNET client is asked for LINEMODE; a raw one (nothing TELNET
    // heard) is not.
    let mut s2 = State::new(Phase::Login);
    feed(&mut s2, &mut big(), &[IAC, DO, opt::SGA]);
    let ask = s2.start_session(&pty_modes());
    assert!(contains(&ask, &[IAC, DO, opt::LINEMODE]));
    let mut raw = State::new(Phase::Login);
    feed(&mut raw, &mut big(), b"demo\r\n");
    assert!(raw.start_session(&pty_modes()).is_empty());
    // The client agrees: external processing, MODE, the SLC table, and
    // WONT ECHO (the client echoes while the terminal would).
    s.receive(
        &[IAC, WILL, opt::LINEMODE],
        UrgentMark::None,
        &Context {
            now: Instant::now(),
            modes: pty_modes(),
        },
        &mut sink,
    );
    assert!(s.linemode());
    assert_eq!(sink.effects, [Effect::ExternalProcessing(true)]);
    assert!(contains(
        &sink.network,
        &[
            IAC,
            SB,
            opt::LINEMODE,
            lm::MODE,
            lm::EDIT | lm::TRAPSIG,
            IAC,
            SE
        ]
    ));
    assert!(contains(&sink.network, &[IAC, SB, opt::LINEMODE, lm::SLC]));
    assert!(contains(&sink.network, &[IAC, WONT, opt::ECHO]));
    feed(&mut s, &mut sink, &[IAC, DONT, opt::ECHO]);
    // A password prompt turns the terminal's echo off: WILL ECHO.
    let mut quiet = pty_modes();
    quiet.echo = false;
    sink.network.clear();
    s.packet(PacketControl::IOCTL, &quiet, &mut sink);
    assert!(contains(&sink.network, &[IAC, WILL, opt::ECHO]));
    // A full-screen program: MODE without EDIT.
    let mut raw = quiet;
    raw.canonical = false;
    sink.network.clear();
    s.packet(PacketControl::IOCTL, &raw, &mut sink);
    assert_eq!(
        sink.network,
        [IAC, SB, opt::LINEMODE, lm::MODE, lm::TRAPSIG, IAC, SE]
    );
    // The client drops LINEMODE: back to character mode, we echo.
    sink.effects.clear();
    sink.network.clear();
    feed(&mut s, &mut sink, &[IAC, WONT, opt::LINEMODE]);
    assert_eq!(sink.effects, [Effect::ExternalProcessing(false)]);
    assert!(!s.linemode());
}

#[test]
fn linemode_requests_reach_the_terminal() {
    let (mut s, mut sink) = session();
    let c = Context {
        now: Instant::now(),
        modes: pty_modes(),
    };
    s.receive(&[IAC, WILL, opt::LINEMODE], UrgentMark::None, &c, &mut sink);
    sink.effects.clear();
    sink.network.clear();
    s.receive(
        &[
            IAC,
            SB,
            opt::LINEMODE,
            lm::SLC,
            slc::EC,
            slc::VALUE,
            8,
            IAC,
            SE,
        ],
        UrgentMark::None,
        &c,
        &mut sink,
    );
    match &sink.effects[..] {
        [Effect::SetModes(change)] => assert_eq!(change.chars, [(slc::EC, 8)]),
        e => panic!("{e:?}"),
    }
    // CVE-2026-32746: forty unknown triplets, nothing answered.
    sink.network.clear();
    let mut sb = vec![IAC, SB, opt::LINEMODE, lm::SLC];
    for i in 0..40u8 {
        sb.extend_from_slice(&[30 + i, slc::VALUE, i]);
    }
    sb.extend_from_slice(&[IAC, SE]);
    s.receive(&sb, UrgentMark::None, &c, &mut sink);
    assert!(sink.network.is_empty());
    // FORWARDMASK refused.
    s.receive(
        &[IAC, SB, opt::LINEMODE, WILL, lm::FORWARDMASK, IAC, SE],
        UrgentMark::None,
        &c,
        &mut sink,
    );
    assert_eq!(
        sink.network,
        [IAC, SB, opt::LINEMODE, DONT, lm::FORWARDMASK, IAC, SE]
    );
}

#[test]
fn lflow_follows_the_terminal() {
    let (mut s, mut sink) = session();
    let c = Context {
        now: Instant::now(),
        modes: pty_modes(),
    };
    s.receive(&[IAC, WILL, opt::LFLOW], UrgentMark::None, &c, &mut sink);
    // (DO LFLOW went out with the opening: the WILL is its answer.)
    assert_eq!(
        sink.network,
        [
            IAC,
            SB,
            opt::LFLOW,
            1,
            IAC,
            SE,
            IAC,
            SB,
            opt::LFLOW,
            3,
            IAC,
            SE
        ]
    );
    let mut raw = pty_modes();
    raw.flow_control = false;
    sink.network.clear();
    s.packet(PacketControl::NOSTOP, &raw, &mut sink);
    assert_eq!(sink.network, [IAC, SB, opt::LFLOW, 0, IAC, SE]);
    sink.network.clear();
    s.packet(PacketControl::NOSTOP, &raw, &mut sink);
    assert!(sink.network.is_empty());
    // IXANY changes come with no event: read again, told once.
    let mut any = raw;
    any.restart_any = true;
    assert_eq!(s.flow(&any), [IAC, SB, opt::LFLOW, 2, IAC, SE]);
    assert!(s.flow(&any).is_empty());
    any.flow_control = true;
    any.restart_any = false;
    assert_eq!(
        s.flow(&any),
        [
            IAC,
            SB,
            opt::LFLOW,
            1,
            IAC,
            SE,
            IAC,
            SB,
            opt::LFLOW,
            3,
            IAC,
            SE
        ]
    );
}

#[test]
fn a_flushed_terminal_sends_a_synch() {
    let (mut s, mut sink) = session();
    s.packet(PacketControl::FLUSHWRITE, &pty_modes(), &mut sink);
    assert_eq!(sink.effects, [Effect::DiscardOutput]);
    assert_eq!(sink.urgent, [(1, DM)]);
}

#[test]
fn status_lists_the_options_in_effect() {
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    feed(
        &mut s,
        &mut sink,
        &[
            IAC,
            DO,
            opt::STATUS,
            IAC,
            DO,
            opt::ECHO,
            IAC,
            WILL,
            opt::NAWS,
        ],
    );
    sink.network.clear();
    feed(&mut s, &mut sink, &[IAC, SB, opt::STATUS, 1, IAC, SE]);
    assert_eq!(
        sink.network,
        [
            IAC,
            SB,
            opt::STATUS,
            0,
            WILL,
            opt::ECHO,
            WILL,
            opt::STATUS,
            DO,
            opt::NAWS,
            IAC,
            SE
        ]
    );
}

#[test]
fn the_hand_over_keeps_what_was_negotiated() {
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let mut sink = big();
    feed(
        &mut s,
        &mut sink,
        &[
            IAC,
            DO,
            opt::ECHO,
            IAC,
            WILL,
            opt::NAWS,
            IAC,
            WILL,
            opt::TTYPE,
        ],
    );
    feed(
        &mut s,
        &mut sink,
        b"\xff\xfa\x18\x00VT220\xff\xf0\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0user\r",
    );
    let bytes = s.encode();
    let mut t = State::decode(&bytes).unwrap();
    assert!(t.local(opt::ECHO) && t.remote(opt::NAWS));
    assert_eq!(t.info.types, ["vt220"]);
    assert_eq!(t.info.window, Some((80, 24)));
    // The LF of the CR LF split across the hand-over is still dropped.
    let mut sink = big();
    feed(&mut t, &mut sink, b"\nls");
    assert_eq!(sink.terminal, b"ls");
    assert!(State::decode(b"junk").is_err());
    assert!(State::decode(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn fuzz_entry_survives_random_input() {
    let mut seed = 12345u64;
    for len in (0..2000).step_by(37) {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let b = (seed >> 33) as u8;
                match b % 4 {
                    0 => 0xf0 | (b >> 4),
                    1 => b % 40,
                    _ => b,
                }
            })
            .collect();
        fuzz_session(&data);
    }
}
