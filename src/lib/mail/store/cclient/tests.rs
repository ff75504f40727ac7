use super::*;
use crate::mail::store::{Flag, FlagChange, Flags, Folder, Tree};
use crate::mail::testutil::TempDir;
use crate::mail::Mailbox;

fn deliver(path: &Path, text: &str) {
    crate::mail::deliver(
        &Mailbox::Mbox(path.to_path_buf()),
        "a@b",
        &mut text.as_bytes(),
    )
    .unwrap();
}

fn setup(tag: &str) -> (TempDir, std::path::PathBuf, Tree) {
    let t = TempDir::new(tag);
    let inbox = t.0.join("inbox");
    let tree = Tree::new_mbox(&inbox, &t.0.join("mail"));
    (t, inbox, tree)
}

fn uids(f: &Folder) -> Vec<u32> {
    f.messages.iter().map(|m| m.uid).collect()
}

#[test]
fn uids_are_given_kept_in_the_file_and_hidden_from_clients() {
    let (_t, inbox, tree) = setup("cc-uids");
    deliver(&inbox, "Subject: one\n\nFrom the start\nbody\n");
    deliver(&inbox, "Subject: two\n\nx\n");
    let mut f = tree.open("INBOX", false).unwrap();
    assert_eq!(uids(&f), [1, 2]);
    assert!(f.messages.iter().all(|m| m.recent));
    let text = fs::read_to_string(&inbox).unwrap();
    assert!(text.contains("X-IMAPbase: "), "{text}");
    assert!(text.contains("X-UID: 1\n") && text.contains("X-UID: 2\n"));
    assert!(text.contains("Status: O\n"));
    assert!(text.contains("\n>From the start\n"), "{text}");
    let one = f.read_message(0).unwrap();
    assert_eq!(
        one,
        b"Return-Path: <a@b>\nSubject: one\n\nFrom the start\nbody\n"
    );
    assert_eq!(f.size(0).unwrap(), crate::wire::wire_size(&one));
    assert_eq!(
        f.read_header(1).unwrap(),
        b"Return-Path: <a@b>\nSubject: two\n\n"
    );
    // Another session: the same UIDs, no longer recent.
    let g = tree.open("INBOX", false).unwrap();
    assert_eq!(uids(&g), [1, 2]);
    assert!(g.messages.iter().all(|m| !m.recent));
    assert_eq!(g.uidvalidity, f.uidvalidity);
    // New mail shows up in a sync with the next UID.
    deliver(&inbox, "Subject: three\n\n");
    let c = f.sync(true).unwrap();
    assert_eq!(c.added, 1);
    assert_eq!(uids(&f), [1, 2, 3]);
    assert!(f.messages[2].recent);
}

#[test]
fn flags_and_keywords_round_trip_and_reach_other_sessions() {
    let (_t, inbox, tree) = setup("cc-flags");
    deliver(&inbox, "Subject: one\n\n");
    deliver(&inbox, "Subject: two\n\n");
    let mut a = tree.open("INBOX", false).unwrap();
    let mut b = tree.open("INBOX", false).unwrap();
    let k = a.intern_keywords(&["$Label1".to_string()]).unwrap()[0].unwrap();
    let mut set = Flags::default().with(Flag::Answered).with(Flag::Flagged);
    set.set_keyword(k, true);
    assert_eq!(a.set_flags(&[(1, FlagChange::Add(set))]).unwrap(), [1]);
    assert_eq!(
        a.set_flags(&[(0, FlagChange::Add(Flags::default().with(Flag::Seen)))])
            .unwrap(),
        [0]
    );
    let text = fs::read_to_string(&inbox).unwrap();
    assert!(text.contains("Status: RO\n"), "{text}");
    assert!(text.contains("X-Status: AF\n"));
    assert!(text.contains("X-Keywords: $Label1\n"));
    let c = b.sync(true).unwrap();
    assert_eq!(c.flags, [1, 2]);
    assert!(b.messages[1].flags.has(Flag::Flagged));
    assert!(b.messages[1].flags.has_keyword(k));
    assert!(b.messages[0].flags.has(Flag::Seen));
    assert!(b.messages[1].modseq > 1);
    // What a client reads never has the store's fields.
    assert_eq!(
        b.read_message(1).unwrap(),
        b"Return-Path: <a@b>\nSubject: two\n\n"
    );
}

#[test]
fn expunged_uids_are_never_given_again() {
    let (_t, inbox, tree) = setup("cc-expunge");
    deliver(&inbox, "Subject: one\n\n");
    deliver(&inbox, "Subject: two\n\n");
    let mut a = tree.open("INBOX", false).unwrap();
    let mut b = tree.open("INBOX", false).unwrap();
    assert_eq!(a.expunge(&[0, 1]).unwrap(), [1, 2]);
    assert!(!fs::read_to_string(&inbox).unwrap().contains("Subject"));
    let c = b.sync(true).unwrap();
    assert_eq!(c.expunged, [1, 2]);
    deliver(&inbox, "Subject: three\n\n");
    let f = tree.open("INBOX", true).unwrap();
    assert_eq!(uids(&f), [3]);
}

#[test]
fn a_c_client_folder_is_read_as_uw_imap_wrote_it() {
    let (t, _inbox, tree) = setup("cc-uw");
    fs::create_dir_all(t.0.join("mail")).unwrap();
    let uw = "From MAILER-DAEMON Wed Dec  2 10:00:00 2026\n\
Date: 02 Dec 2026 10:00:00 +0000\n\
From: Mail System Internal Data <MAILER-DAEMON@host>\n\
Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n\
X-IMAP: 1700000000 0000000007 Work $Junk\n\
Status: RO\n\
\n\
This text is part of the internal format of your mail folder.\n\
\n\
From a@b Tue Dec  1 09:30:00 2026\n\
Subject: five\n\
Status: RO\n\
X-Status: F\n\
X-Keywords: Work\n\
X-UID: 5\n\
\n\
hi\n\
\n\
From a@b Tue Dec  1 09:31:00 2026 +0100\n\
Subject: copied in by a mail reader\n\
X-UID: 3\n\
\n\
yo\n\
\n";
    fs::write(t.0.join("mail/Old"), uw).unwrap();
    let f = tree.open("Old", true).unwrap();
    assert_eq!(f.uidvalidity, 1_700_000_000);
    // X-UID 3 after 5 is no UID: it gets the next one.
    assert_eq!(uids(&f), [5, 8]);
    assert_eq!(f.uidnext, 9);
    let m = &f.messages[0];
    assert!(m.flags.has(Flag::Seen) && m.flags.has(Flag::Flagged));
    assert!(m.flags.has_keyword(f.keywords.find("Work").unwrap()));
    assert!(!m.recent && f.messages[1].recent);
    let mut f = f;
    assert_eq!(
        f.internal_date(0).unwrap(),
        crate::calendar::days_from_civil(2026, 12, 1) * 86400 + 9 * 3600 + 1800
    );
    assert_eq!(f.read_message(0).unwrap(), b"Subject: five\n\nhi\n");
}

#[test]
fn appends_get_uids_after_the_files_own() {
    let (_t, inbox, tree) = setup("cc-append");
    deliver(&inbox, "Subject: one\n\n");
    let mut add = tree.adder("INBOX").unwrap();
    add.add_bytes(
        b"Subject: app\r\nStatus: RO\r\n\r\nFrom me\r\n",
        Flags::default().with(Flag::Seen),
        "",
        Some(1_000_000_000),
    )
    .unwrap();
    let (validity, new) = add.finish().unwrap();
    // The delivered message had no UID: it got 1 first.
    assert_eq!(new, [2]);
    let mut f = tree.open("INBOX", false).unwrap();
    assert_eq!(f.uidvalidity, validity);
    assert_eq!(uids(&f), [1, 2]);
    assert!(f.messages[1].flags.has(Flag::Seen));
    assert_eq!(f.read_message(1).unwrap(), b"Subject: app\n\nFrom me\n");
    assert_eq!(f.internal_date(1).unwrap(), 1_000_000_000);
    // Into a folder that is empty, then not.
    tree.create("Sent").unwrap();
    for i in 0..2 {
        let mut add = tree.adder("Sent").unwrap();
        add.add_bytes(format!("N: {i}\n\n").as_bytes(), Flags::default(), "", None)
            .unwrap();
        assert_eq!(add.finish().unwrap().1, [i + 1]);
    }
    let s = tree.open("Sent", true).unwrap();
    assert_eq!(uids(&s), [1, 2]);
}

#[test]
fn pop3_uidls_survive_imap_rewrites() {
    let (_t, inbox, tree) = setup("cc-pop3");
    deliver(&inbox, "Subject: one\n\n");
    deliver(&inbox, "Subject: two\n\n");
    let mb = Mailbox::Mbox(inbox.clone());
    let before: Vec<String> = {
        let d = crate::mail::Maildrop::open(&mb).unwrap();
        d.messages().iter().map(|m| m.uid.clone()).collect()
    };
    let mut f = tree.open("INBOX", false).unwrap();
    f.set_flags(&[(0, FlagChange::Add(Flags::default().with(Flag::Seen)))])
        .unwrap();
    let d = crate::mail::Maildrop::open(&mb).unwrap();
    let after: Vec<String> = d.messages().iter().map(|m| m.uid.clone()).collect();
    assert_eq!(before, after);
}

#[test]
fn from_lines_give_dates() {
    let d = |s: &str| from_line_date(s.as_bytes());
    let want = crate::calendar::days_from_civil(2026, 1, 2) * 86400 + 3 * 3600 + 4 * 60 + 5;
    assert_eq!(d("From a@b Fri Jan  2 03:04:05 2026\n"), Some(want));
    assert_eq!(d("From a@b Fri Jan 2 03:04:05 2026 +0100\n"), Some(want));
    assert_eq!(d("From a@b Fri Jan  2 03:04:05 CET 2026\n"), Some(want));
    assert_eq!(d("From a@b Fri Jan  2 03:04 2026\n"), Some(want - 5));
    assert_eq!(d("From a@b\n"), None);
    assert_eq!(d("From a@b Fri Jan 99 03:04:05 2026\n"), None);
}

#[test]
fn the_stores_fields_are_stripped_with_their_continuations() {
    let h = b"A: 1\nX-Keywords: a\n b\nStatus: RO\nB: 2\n c\n\n";
    let (out, removed) = strip(h);
    assert_eq!(out, b"A: 1\nB: 2\n c\n\n");
    // Wire octets: each LF counts as CRLF.
    assert_eq!(removed, (14 + 1) + (3 + 1) + (11 + 1));
}

#[test]
fn sessions_opening_a_missing_mbox_at_once_agree_on_its_uidvalidity() {
    let (_t, _inbox, tree) = setup("cc-race");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let tree = tree.clone();
            std::thread::spawn(move || tree.open("INBOX", false).unwrap().uidvalidity)
        })
        .collect();
    let v: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(v.iter().all(|&x| x == v[0]), "{v:?}");
}

#[test]
fn fuzz_properties_hold_on_samples() {
    for sample in [
        &b""[..],
        b"\x00",
        b"\x7fSubject: x\r\nStatus: RO\r\n\r\nFrom here\r\n>From there",
        b"\x41X-UID: 9\nX-Keywords: a\n b\n\nbody",
        b"\x10no header end",
        b"\x20From a@b Fri Jan  2 03:04:05 2026",
        b"\x05Subject: s\n\n",
        b"\x05Subject: s\n\n\n",
        b"\x05\n\nbody",
    ] {
        fuzz_cclient(sample);
    }
}

#[test]
fn a_message_without_a_header_keeps_its_leading_blank_line() {
    let (_t, _inbox, tree) = setup("cc-noheader");
    let mut add = tree.adder("INBOX").unwrap();
    add.add_bytes(b"\r\nbody\r\n\r\nmore\r\n", Flags::default(), "", None)
        .unwrap();
    add.finish().unwrap();
    let mut f = tree.open("INBOX", true).unwrap();
    assert_eq!(f.read_message(0).unwrap(), b"\nbody\n\nmore\n");
    assert_eq!(f.read_header(0).unwrap(), b"\n");
    fuzz_cclient(b"\n\n\r\r\n\n\n\n\x81\xf7\r");
}
