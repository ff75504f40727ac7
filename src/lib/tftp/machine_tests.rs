//! Unit tests of the transfer state machine: every exchange as datagrams
//! and file answers in, actions out.

use super::*;

const LIMITS: Limits = Limits {
    max_blksize: 65464,
    max_windowsize: 64,
};
const SECOND: Duration = Duration::from_secs(1);
const TIMER: Action = Action::SetTimer(SECOND);

fn request(write: bool, mode: Mode, options: &[(&str, &str)]) -> Request {
    Request {
        write,
        filename: "f".into(),
        mode,
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn rrq(options: &[(&str, &str)]) -> Request {
    request(false, Mode::Octet, options)
}

fn wrq(options: &[(&str, &str)]) -> Request {
    request(true, Mode::Octet, options)
}

fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    packet::data(block, payload, &mut wire);
    wire
}

fn send_data(block: u16, payload: &[u8]) -> Action {
    Action::Send(data(block, payload))
}

fn send_ack(block: u16) -> Action {
    Action::Send(packet::ack(block).to_vec())
}

fn send_oack(options: &[(&str, &str)]) -> Action {
    let options: Vec<(String, String)> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Action::Send(packet::oack(&options))
}

fn send_error(code: ErrorCode, message: &str) -> Action {
    Action::Send(packet::error(code, message))
}

fn done(bytes: u64) -> Action {
    Action::Done(Outcome::Complete { bytes })
}

fn failed(why: &str) -> Action {
    Action::Done(Outcome::Failed(why.into()))
}

/// Answer every `Read` from `file` until the machine wants something else;
/// the other actions of all the batches, in order.
fn serve_reads(t: &mut Transfer, mut actions: Vec<Action>, file: &mut &[u8]) -> Vec<Action> {
    let mut all = Vec::new();
    while let Some(Action::Read(max)) = actions.last() {
        let (head, tail) = file.split_at((*max).min(file.len()));
        *file = tail;
        actions.pop();
        all.append(&mut actions);
        actions = t.file_read(Ok(head));
    }
    all.append(&mut actions);
    all
}

/// A read transfer of `content` after its start (and ACK 0 if it sent an
/// OACK): the first window's actions.
fn reading(
    req: &Request,
    limits: Limits,
    content: &'static [u8],
) -> (Transfer, Vec<Action>, &'static [u8]) {
    let mut file = content;
    let (mut t, start) = Transfer::start(req, limits, Some(content.len() as u64));
    let first = match start.first() {
        Some(Action::Send(p)) if p[1] == packet::OACK as u8 => t.datagram(&packet::ack(0)),
        _ => start,
    };
    let actions = serve_reads(&mut t, first, &mut file);
    (t, actions, file)
}

/// Feed a DATA block and complete its write.
fn deliver(t: &mut Transfer, block: u16, payload: &[u8]) -> Vec<Action> {
    let actions = t.datagram(&data(block, payload));
    match actions.last() {
        Some(Action::Write(_)) => t.written(Ok(())),
        _ => actions,
    }
}

// Reading (RRQ).

#[test]
fn read_without_options_starts_with_block_1() {
    let (mut t, actions) = Transfer::start(&rrq(&[]), LIMITS, Some(5));
    assert_eq!(actions, vec![Action::Read(8192)]);
    assert_eq!(t.file_read(Ok(b"hello")), vec![Action::Read(8192)]);
    assert_eq!(t.file_read(Ok(b"")), vec![send_data(1, b"hello"), TIMER]);
    assert_eq!(t.datagram(&packet::ack(1)), vec![done(5)]);
    assert!(t.is_over());
}

#[test]
fn read_of_several_blocks_one_at_a_time() {
    let content: &[u8] = &[7u8; 1030];
    let (mut t, actions, mut rest) = reading(&rrq(&[]), LIMITS, content);
    assert_eq!(actions, vec![send_data(1, &content[..512]), TIMER]);
    let next = t.datagram(&packet::ack(1));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![send_data(2, &content[512..1024]), TIMER]
    );
    let next = t.datagram(&packet::ack(2));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![send_data(3, &content[1024..]), TIMER]
    );
    assert_eq!(t.datagram(&packet::ack(3)), vec![done(1030)]);
}

#[test]
fn a_file_filling_its_last_block_ends_with_an_empty_one() {
    let req = rrq(&[("blksize", "8")]);
    let (mut t, actions, mut rest) = reading(&req, LIMITS, b"12345678");
    assert_eq!(actions, vec![send_data(1, b"12345678"), TIMER]);
    let next = t.datagram(&packet::ack(1));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![send_data(2, b""), TIMER]
    );
    assert_eq!(t.datagram(&packet::ack(2)), vec![done(8)]);
}

#[test]
fn an_empty_file_is_one_empty_block() {
    let (mut t, actions, _) = reading(&rrq(&[]), LIMITS, b"");
    assert_eq!(actions, vec![send_data(1, b""), TIMER]);
    assert_eq!(t.datagram(&packet::ack(1)), vec![done(0)]);
}

#[test]
fn read_with_options_sends_an_oack_and_waits_for_ack_0() {
    let req = rrq(&[("blksize", "1024"), ("tsize", "0")]);
    let (mut t, actions) = Transfer::start(&req, LIMITS, Some(3000));
    assert_eq!(
        actions,
        vec![send_oack(&[("blksize", "1024"), ("tsize", "3000")]), TIMER]
    );
    // Only ACK 0 answers the OACK.
    assert_eq!(t.datagram(&packet::ack(1)), vec![]);
    assert_eq!(t.datagram(&data(1, b"x")), vec![]);
    assert_eq!(t.datagram(&packet::ack(0)), vec![Action::Read(8192)]);
    assert_eq!(
        t.file_read(Ok(&[1u8; 1024])),
        vec![send_data(1, &[1u8; 1024]), TIMER]
    );
    // A late duplicate ACK 0 changes nothing.
    assert_eq!(t.datagram(&packet::ack(0)), vec![]);
}

#[test]
fn tsize_alone_is_acknowledged_in_octet_mode_only() {
    let (_, actions) = Transfer::start(&rrq(&[("tsize", "0")]), LIMITS, Some(42));
    assert_eq!(actions, vec![send_oack(&[("tsize", "42")]), TIMER]);
    // The netascii size is unknown before conversion: no OACK at all.
    let req = request(false, Mode::NetAscii, &[("tsize", "0")]);
    let (_, actions) = Transfer::start(&req, LIMITS, Some(42));
    assert_eq!(actions, vec![Action::Read(8192)]);
}

#[test]
fn options_are_clamped_to_the_limits() {
    let limits = Limits {
        max_blksize: 1468,
        max_windowsize: 16,
    };
    let req = rrq(&[
        ("blksize", "65464"),
        ("timeout", "3"),
        ("windowsize", "500"),
    ]);
    let (_, actions) = Transfer::start(&req, limits, Some(0));
    assert_eq!(
        actions,
        vec![
            send_oack(&[("blksize", "1468"), ("timeout", "3"), ("windowsize", "16")]),
            Action::SetTimer(Duration::from_secs(3)),
        ]
    );
}

#[test]
fn options_out_of_range_are_refused_by_leaving_them_out() {
    let req = rrq(&[
        ("blksize", "4"),
        ("blksize", "65465"),
        ("timeout", "0"),
        ("timeout", "31"),
        ("windowsize", "0"),
        ("windowsize", "x"),
        ("frobnicate", "1"),
    ]);
    let (mut t, actions) = Transfer::start(&req, LIMITS, Some(3));
    // Nothing acknowledged: plain RFC 1350, data at once, 512-byte blocks.
    assert_eq!(actions, vec![Action::Read(8192)]);
    t.file_read(Ok(b"abc"));
    assert_eq!(t.file_read(Ok(b"")), vec![send_data(1, b"abc"), TIMER]);
}

#[test]
fn the_negotiated_timeout_paces_retransmission() {
    let (mut t, actions, _) = reading(&rrq(&[("timeout", "5")]), LIMITS, b"x");
    let five = Action::SetTimer(Duration::from_secs(5));
    assert_eq!(actions, vec![send_data(1, b"x"), five.clone()]);
    assert_eq!(t.timeout(), vec![send_data(1, b"x"), five]);
}

/// Ten 8-byte blocks for window tests.
const TEN_BLOCKS: &[u8] = b"0000000011111111222222223333333344444444\
                            55555555666666667777777788888888aaaaaaaa";

fn block_of_ten(n: u16) -> Action {
    send_data(n, &TEN_BLOCKS[(n as usize - 1) * 8..n as usize * 8])
}

#[test]
fn a_window_with_a_lost_block_goes_back_on_the_receivers_ack() {
    let block = block_of_ten;
    let req = rrq(&[("blksize", "8"), ("windowsize", "4")]);
    let (mut t, actions, mut rest) = reading(&req, LIMITS, TEN_BLOCKS);
    assert_eq!(actions, vec![block(1), block(2), block(3), block(4), TIMER]);
    // Block 3 was lost: the receiver acknowledges 2 and drops 4. The next
    // window starts at 3, at once rather than after a timeout.
    let next = t.datagram(&packet::ack(2));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![block(3), block(4), block(5), block(6), TIMER]
    );
    // Repeats of ACK 2 are duplicates: nothing is resent.
    assert_eq!(t.datagram(&packet::ack(2)), vec![]);
    assert_eq!(t.datagram(&packet::ack(2)), vec![]);
    let next = t.datagram(&packet::ack(6));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![block(7), block(8), block(9), block(10), TIMER]
    );
    let next = t.datagram(&packet::ack(10));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![send_data(11, b""), TIMER]
    );
    assert_eq!(t.datagram(&packet::ack(11)), vec![done(80)]);
}

#[test]
fn a_timeout_resends_the_window_and_an_ack_then_only_slides_it() {
    let block = block_of_ten;
    let req = rrq(&[("blksize", "8"), ("windowsize", "4")]);
    let (mut t, _, mut rest) = reading(&req, LIMITS, TEN_BLOCKS);
    // Blocks 3 and 4 were lost at the tail: the receiver is silent.
    assert_eq!(
        t.timeout(),
        vec![block(1), block(2), block(3), block(4), TIMER]
    );
    // The old block 1 makes it acknowledge 2. Blocks 3 and 4 went out
    // again a moment ago: they are not sent a third time.
    let next = t.datagram(&packet::ack(2));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![block(5), block(6), TIMER]
    );
    // New blocks lost after that are resent on the ACK again.
    let next = t.datagram(&packet::ack(4));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![block(5), block(6), block(7), block(8), TIMER]
    );
}

#[test]
fn retransmits_up_to_the_limit_then_gives_up() {
    let (mut t, _, _) = reading(&rrq(&[]), LIMITS, b"x");
    for _ in 0..MAX_RETRIES {
        assert_eq!(t.timeout(), vec![send_data(1, b"x"), TIMER]);
    }
    assert_eq!(
        t.timeout(),
        vec![
            send_error(ErrorCode::NotDefined, "timed out"),
            failed("timed out")
        ]
    );
    assert!(t.is_over());
    assert_eq!(t.timeout(), vec![]);
    assert_eq!(t.datagram(&packet::ack(1)), vec![]);
}

#[test]
fn progress_resets_the_retry_count() {
    let content: &[u8] = &[3u8; 600];
    let (mut t, _, mut rest) = reading(&rrq(&[]), LIMITS, content);
    for _ in 0..MAX_RETRIES {
        t.timeout();
    }
    let next = t.datagram(&packet::ack(1));
    serve_reads(&mut t, next, &mut rest);
    for _ in 0..MAX_RETRIES {
        assert_eq!(t.timeout(), vec![send_data(2, &content[512..]), TIMER]);
    }
    assert!(matches!(
        t.timeout().last(),
        Some(Action::Done(Outcome::Failed(_)))
    ));
}

#[test]
fn an_unanswered_oack_is_resent_then_given_up() {
    let oack = send_oack(&[("blksize", "1024")]);
    let (mut t, _) = Transfer::start(&rrq(&[("blksize", "1024")]), LIMITS, Some(1));
    for _ in 0..MAX_RETRIES {
        assert_eq!(t.timeout(), vec![oack.clone(), TIMER]);
    }
    let why = "no answer to the option acknowledgement";
    assert_eq!(
        t.timeout(),
        vec![send_error(ErrorCode::NotDefined, why), failed(why)]
    );
}

#[test]
fn duplicate_acks_are_ignored_no_sorcerers_apprentice() {
    let content: &[u8] = &[9u8; 1500];
    let (mut t, _, mut rest) = reading(&rrq(&[]), LIMITS, content);
    let next = t.datagram(&packet::ack(1));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![send_data(2, &content[512..1024]), TIMER]
    );
    // The delayed copy of ACK 1 resends nothing and leaves the timer.
    assert_eq!(t.datagram(&packet::ack(1)), vec![]);
    assert_eq!(t.datagram(&packet::ack(1)), vec![]);
}

#[test]
fn acks_for_blocks_never_sent_are_ignored() {
    let (mut t, _, _) = reading(&rrq(&[("windowsize", "2")]), LIMITS, &[1u8; 2000]);
    for block in [3, 4, 1000, 65535] {
        assert_eq!(t.datagram(&packet::ack(block)), vec![], "ACK {block}");
    }
    // The window is still 1..=2.
    assert!(t.datagram(&packet::ack(2)).contains(&Action::Read(8192)));
}

#[test]
fn sent_block_numbers_wrap_past_65535() {
    const BLOCKS: usize = 65537;
    static CONTENT: [u8; 8 * BLOCKS] = [5u8; 8 * BLOCKS];
    let (mut t, mut actions, mut rest) = reading(&rrq(&[("blksize", "8")]), LIMITS, &CONTENT);
    let mut wire_numbers = Vec::new();
    loop {
        let Some(Action::Send(p)) = actions.first() else {
            panic!("{actions:?}");
        };
        let Ok(Packet::Data { block, .. }) = packet::parse(p) else {
            panic!()
        };
        wire_numbers.push(block);
        if wire_numbers.len() == 65536 {
            // Before block 65536 is acknowledged, a stale ACK 0 is no ACK
            // for it, nor is ACK 65534 an old one to act on.
            assert_eq!(t.datagram(&packet::ack(65534)), vec![]);
        }
        actions = t.datagram(&packet::ack(block));
        if matches!(actions.last(), Some(Action::Done(_))) {
            break;
        }
        actions = serve_reads(&mut t, actions, &mut rest);
    }
    assert_eq!(actions, vec![done(8 * BLOCKS as u64)]);
    // 65537 full blocks and the empty one that ends the file.
    assert_eq!(wire_numbers.len(), BLOCKS + 1);
    assert_eq!(wire_numbers[65533..], [65534, 65535, 0, 1, 2]);
}

#[test]
fn an_error_from_the_peer_ends_the_transfer_unanswered() {
    let (mut t, _, _) = reading(&rrq(&[]), LIMITS, &[0u8; 1000]);
    let error = packet::error(ErrorCode::DiskFull, "no room\n");
    assert_eq!(t.datagram(&error), vec![failed("client: no room?")]);
    assert!(t.is_over());
}

#[test]
fn an_error_refusing_the_oack_ends_the_transfer() {
    let (mut t, _) = Transfer::start(&rrq(&[("blksize", "1024")]), LIMITS, Some(1));
    let error = packet::error(ErrorCode::BadOptions, "options refused");
    assert_eq!(t.datagram(&error), vec![failed("client: options refused")]);
}

#[test]
fn a_read_error_is_reported_to_the_peer() {
    let (mut t, _) = Transfer::start(&rrq(&[]), LIMITS, Some(1));
    let eio = io::Error::from_raw_os_error(libc::EIO);
    let why = eio.to_string();
    assert_eq!(
        t.file_read(Err(eio)),
        vec![send_error(ErrorCode::NotDefined, &why), failed(&why)]
    );
}

#[test]
fn netascii_reads_convert_line_ends_across_blocks() {
    let req = request(false, Mode::NetAscii, &[("blksize", "8")]);
    let (mut t, actions, mut rest) = reading(&req, LIMITS, b"1234567\n9\r");
    // "1234567\r\n9\r\0": the CR LF pair is split between blocks.
    assert_eq!(actions, vec![send_data(1, b"1234567\r"), TIMER]);
    let next = t.datagram(&packet::ack(1));
    assert_eq!(
        serve_reads(&mut t, next, &mut rest),
        vec![send_data(2, b"\n9\r\0"), TIMER]
    );
    // The count is of bytes on the wire.
    assert_eq!(t.datagram(&packet::ack(2)), vec![done(12)]);
}

// Writing (WRQ).

#[test]
fn write_without_options_acks_each_block_then_dallies() {
    let (mut t, actions) = Transfer::start(&wrq(&[]), LIMITS, None);
    assert_eq!(actions, vec![send_ack(0), TIMER]);
    let full = [4u8; 512];
    assert_eq!(
        t.datagram(&data(1, &full)),
        vec![Action::Write(full.to_vec())]
    );
    assert_eq!(t.written(Ok(())), vec![send_ack(1), TIMER]);
    // Our ACK was lost: the repeat is acknowledged again, not written.
    assert_eq!(t.datagram(&data(1, &full)), vec![send_ack(1)]);
    assert_eq!(
        t.datagram(&data(2, b"end")),
        vec![Action::Write(b"end".to_vec())]
    );
    // The last block is acknowledged only once the file is committed.
    assert_eq!(t.written(Ok(())), vec![Action::Commit]);
    assert_eq!(t.committed(Ok(())), vec![send_ack(2), TIMER]);
    // Dallying: a repeated last block means the final ACK was lost. The
    // timer is not pushed back.
    assert_eq!(t.datagram(&data(2, b"end")), vec![send_ack(2)]);
    assert_eq!(t.datagram(&data(1, &full)), vec![]);
    assert_eq!(t.datagram(&packet::ack(2)), vec![]);
    assert!(!t.is_over());
    assert_eq!(t.timeout(), vec![done(515)]);
    assert!(t.is_over());
}

#[test]
fn an_error_while_dallying_still_completes() {
    let (mut t, _) = Transfer::start(&wrq(&[]), LIMITS, None);
    deliver(&mut t, 1, b"short");
    assert_eq!(t.committed(Ok(())), vec![send_ack(1), TIMER]);
    let error = packet::error(ErrorCode::NotDefined, "bye");
    assert_eq!(t.datagram(&error), vec![done(5)]);
}

#[test]
fn write_with_options_is_answered_by_block_1() {
    let req = wrq(&[("blksize", "8"), ("tsize", "9")]);
    let oack = send_oack(&[("blksize", "8"), ("tsize", "9")]);
    let (mut t, actions) = Transfer::start(&req, LIMITS, None);
    assert_eq!(actions, vec![oack.clone(), TIMER]);
    assert_eq!(t.timeout(), vec![oack.clone(), TIMER]);
    // Before block 1, anything else gets the OACK again.
    assert_eq!(t.datagram(&data(2, b"12345678")), vec![oack]);
    assert_eq!(t.datagram(&packet::ack(0)), vec![]);
    assert_eq!(
        t.datagram(&data(1, b"12345678")),
        vec![Action::Write(b"12345678".to_vec())]
    );
    assert_eq!(t.written(Ok(())), vec![send_ack(1), TIMER]);
    // The OACK is answered: a timeout now repeats ACK 1.
    assert_eq!(t.timeout(), vec![send_ack(1), TIMER]);
    assert_eq!(
        t.datagram(&data(2, b"9")),
        vec![Action::Write(b"9".to_vec())]
    );
    assert_eq!(t.written(Ok(())), vec![Action::Commit]);
    assert_eq!(t.committed(Ok(())), vec![send_ack(2), TIMER]);
}

#[test]
fn tsize_alone_on_a_write_is_echoed() {
    let (_, actions) = Transfer::start(&wrq(&[("tsize", "1234")]), LIMITS, None);
    assert_eq!(actions, vec![send_oack(&[("tsize", "1234")]), TIMER]);
}

#[test]
fn an_unanswered_write_oack_is_given_up() {
    let (mut t, _) = Transfer::start(&wrq(&[("windowsize", "4")]), LIMITS, None);
    for _ in 0..MAX_RETRIES {
        assert_eq!(t.timeout(), vec![send_oack(&[("windowsize", "4")]), TIMER]);
    }
    let why = "no answer to the option acknowledgement";
    assert_eq!(
        t.timeout(),
        vec![send_error(ErrorCode::NotDefined, why), failed(why)]
    );
}

#[test]
fn a_silent_writer_gets_ack_0_again_then_is_given_up() {
    let (mut t, _) = Transfer::start(&wrq(&[]), LIMITS, None);
    for _ in 0..MAX_RETRIES {
        assert_eq!(t.timeout(), vec![send_ack(0), TIMER]);
    }
    assert_eq!(
        t.timeout(),
        vec![
            send_error(ErrorCode::NotDefined, "timed out"),
            failed("timed out")
        ]
    );
}

#[test]
fn a_write_window_acks_once_and_recovers_a_lost_block() {
    let req = wrq(&[("blksize", "8"), ("windowsize", "4")]);
    let (mut t, _) = Transfer::start(&req, LIMITS, None);
    let block = |n: u8| [b'0' + n; 8];
    assert_eq!(deliver(&mut t, 1, &block(1)), vec![TIMER]);
    assert_eq!(deliver(&mut t, 2, &block(2)), vec![TIMER]);
    // Block 3 was lost: 4 gets the last good block's ACK. Only once: the
    // sender restarts its window on each such ACK.
    assert_eq!(t.datagram(&data(4, &block(4))), vec![send_ack(2)]);
    assert_eq!(t.datagram(&data(5, &block(5))), vec![]);
    // The sender goes back: one ACK for the new window, counted from 3.
    assert_eq!(deliver(&mut t, 3, &block(3)), vec![TIMER]);
    assert_eq!(deliver(&mut t, 4, &block(4)), vec![TIMER]);
    assert_eq!(deliver(&mut t, 5, &block(5)), vec![TIMER]);
    assert_eq!(deliver(&mut t, 6, &block(6)), vec![send_ack(6), TIMER]);
    // A later gap gets its own ACK.
    assert_eq!(t.datagram(&data(8, &block(8))), vec![send_ack(6)]);
    assert_eq!(deliver(&mut t, 7, b""), vec![Action::Commit]);
    assert_eq!(t.committed(Ok(())), vec![send_ack(7), TIMER]);
    assert_eq!(t.timeout(), vec![done(48)]);
}

#[test]
fn a_write_window_restarts_its_count_after_a_timeout_ack() {
    let req = wrq(&[("blksize", "8"), ("windowsize", "4")]);
    let (mut t, _) = Transfer::start(&req, LIMITS, None);
    let full = [7u8; 8];
    deliver(&mut t, 1, &full);
    deliver(&mut t, 2, &full);
    // Blocks 3 and 4 were lost at the tail: our timer asks for 3, and the
    // sender's next window is 3 to 6.
    assert_eq!(t.timeout(), vec![send_ack(2), TIMER]);
    assert_eq!(deliver(&mut t, 3, &full), vec![TIMER]);
    assert_eq!(deliver(&mut t, 4, &full), vec![TIMER]);
    assert_eq!(deliver(&mut t, 5, &full), vec![TIMER]);
    assert_eq!(deliver(&mut t, 6, &full), vec![send_ack(6), TIMER]);
}

#[test]
fn received_block_numbers_wrap_past_65535() {
    let (mut t, _) = Transfer::start(&wrq(&[("blksize", "8")]), LIMITS, None);
    let full = [1u8; 8];
    for n in 1..=65537u64 {
        assert_eq!(
            deliver(&mut t, n as u16, &full),
            vec![send_ack(n as u16), TIMER],
            "{n}"
        );
        if n == 65537 {
            // Block 65535's late repeat is a duplicate of an old block, not
            // one to write: acknowledge the last good one (65537 -> 1).
            assert_eq!(t.datagram(&data(65535, &full)), vec![send_ack(1)]);
        }
    }
    assert_eq!(deliver(&mut t, 2, b"x"), vec![Action::Commit]);
    assert_eq!(t.committed(Ok(())), vec![send_ack(2), TIMER]);
    assert_eq!(t.timeout(), vec![done(8 * 65537 + 1)]);
}

#[test]
fn disk_full_is_reported_and_nothing_acknowledged() {
    let (mut t, _) = Transfer::start(&wrq(&[]), LIMITS, None);
    t.datagram(&data(1, &[0u8; 512]));
    assert_eq!(
        t.written(Err(io::Error::from_raw_os_error(libc::ENOSPC))),
        vec![
            send_error(ErrorCode::DiskFull, "disk full"),
            failed("disk full")
        ]
    );
    assert!(t.is_over());
}

#[test]
fn a_failed_commit_is_reported_and_the_last_block_not_acknowledged() {
    let (mut t, _) = Transfer::start(&wrq(&[]), LIMITS, None);
    assert_eq!(deliver(&mut t, 1, b"abc"), vec![Action::Commit]);
    let eio = io::Error::from_raw_os_error(libc::EIO);
    let why = eio.to_string();
    assert_eq!(
        t.committed(Err(eio)),
        vec![send_error(ErrorCode::NotDefined, &why), failed(&why)]
    );
}

#[test]
fn netascii_writes_decode_pairs_split_across_blocks() {
    let req = request(true, Mode::NetAscii, &[("blksize", "8")]);
    let (mut t, _) = Transfer::start(&req, LIMITS, None);
    let mut written = Vec::new();
    for (n, block) in [&b"1234567\r"[..], b"\nabcdef\r", b"\0z\r"]
        .iter()
        .enumerate()
    {
        let Some(Action::Write(bytes)) = t.datagram(&data(n as u16 + 1, block)).pop() else {
            panic!("no write for block {}", n + 1);
        };
        written.extend(bytes);
        t.written(Ok(()));
    }
    // CR LF -> LF and CR NUL -> CR across blocks; a CR ending the file is
    // kept rather than lost.
    assert_eq!(written, b"1234567\nabcdef\rz\r");
    assert_eq!(t.committed(Ok(())), vec![send_ack(3), TIMER]);
    assert_eq!(t.timeout(), vec![done(17)]);
}

// Either direction.

#[test]
fn garbage_and_packets_for_the_other_direction_are_ignored() {
    let (mut reader, _, _) = reading(&rrq(&[]), LIMITS, &[0u8; 600]);
    let (mut writer, _) = Transfer::start(&wrq(&[]), LIMITS, None);
    let rrq_packet = b"\0\x01f\0octet\0";
    let oack = packet::oack(&[("blksize".into(), "8".into())]);
    for t in [&mut reader, &mut writer] {
        for junk in [
            &b""[..],
            b"\0",
            b"\0\x03",
            b"\0\x09\0\0",
            b"\0\x01f\0mail\0",
            rrq_packet,
            &oack,
        ] {
            assert_eq!(t.datagram(junk), vec![], "{junk:?}");
        }
    }
    assert_eq!(reader.datagram(&data(1, b"x")), vec![]);
    assert_eq!(writer.datagram(&packet::ack(1)), vec![]);
    assert!(!reader.is_over() && !writer.is_over());
}

#[test]
fn answers_out_of_turn_are_ignored() {
    let (mut reader, _, _) = reading(&rrq(&[]), LIMITS, &[0u8; 600]);
    assert_eq!(reader.file_read(Ok(b"more")), vec![]);
    assert_eq!(reader.written(Ok(())), vec![]);
    let (mut writer, _) = Transfer::start(&wrq(&[]), LIMITS, None);
    assert_eq!(writer.written(Ok(())), vec![]);
    assert_eq!(writer.committed(Ok(())), vec![]);
    assert_eq!(writer.file_read(Ok(b"")), vec![]);
    // While a write is out, the peer's datagrams and the timer wait.
    writer.datagram(&data(1, &[0u8; 512]));
    assert_eq!(writer.datagram(&data(2, b"x")), vec![]);
    assert_eq!(writer.timeout(), vec![]);
    assert_eq!(writer.written(Ok(())), vec![send_ack(1), TIMER]);
}

#[test]
fn io_errors_map_to_tftp_codes() {
    use std::io::ErrorKind::*;
    let code = |e: io::Error| Failure::from(e).code;
    assert_eq!(code(NotFound.into()), ErrorCode::FileNotFound);
    assert_eq!(code(PermissionDenied.into()), ErrorCode::AccessViolation);
    assert_eq!(code(AlreadyExists.into()), ErrorCode::FileExists);
    assert_eq!(
        code(io::Error::from_raw_os_error(libc::ENOSPC)),
        ErrorCode::DiskFull
    );
    assert_eq!(
        code(io::Error::from_raw_os_error(libc::EIO)),
        ErrorCode::NotDefined
    );
}

#[test]
fn fuzz_entry_survives_random_input() {
    // xorshift: deterministic, no dependency.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = (next() % 512) as usize;
        let input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        fuzz(&input);
    }
    fuzz(&[]);
    // A writer fed in-order blocks: reaches the commit and the dally.
    let mut writer = vec![0b0000_0101, 0];
    for block in 1..=3u16 {
        writer.push(3);
        writer.extend(block.to_be_bytes());
        writer.push(if block == 3 { 2 } else { 8 });
        writer.extend([b'a'; 8].iter().take(if block == 3 { 2 } else { 8 }));
    }
    fuzz(&writer);
}
