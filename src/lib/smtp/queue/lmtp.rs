//! The LMTP client (RFC 2033) as a state machine: replies in, commands
//! out, no I/O (`lmtp_deliver.rs` drives it). It shares the SMTP client's
//! reply reader, extensions and outcomes (`client.rs`); what differs is the
//! shape of the dialogue: LHLO, one connection carrying message after
//! message, MAIL, the RCPTs and DATA sent in one go when the server offers
//! PIPELINING, and after the message a reply for each accepted recipient.
//!
//! Every reply the client waits for is one entry of `expect`, in the order
//! the server owes them: pipelined or not, replies are matched to the
//! commands they answer by position.

use std::collections::VecDeque;

use super::client::{xtext, ClientMessage, Extensions, Outcome, RcptResult, Reply};

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these command lines (CRLF added by the driver) in one write,
    /// then read replies.
    Send(Vec<String>),
    /// Send the message body (dot-stuffed, then ".\r\n"), then read
    /// replies.
    SendBody,
    /// Read the next reply.
    Read,
    /// The session is ready for a message (`begin`) or `quit`. Results of
    /// the message just finished are in `take_results`.
    Ready,
    /// The connection is unusable: close it. Undecided recipients were
    /// deferred with this text.
    Close(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Greeting,
    Lhlo,
    Mail,
    /// The reply to the i-th RCPT of the message.
    Rcpt(usize),
    Data,
    /// The reply for the i-th recipient after the body.
    Delivery(usize),
    Rset,
    Quit,
}

/// One LMTP connection, message after message.
pub struct Session {
    hostname: String,
    expect: VecDeque<Expect>,
    pub ext: Extensions,
    pipelining: bool,
    ready: bool,
    closed: bool,
    msg: Option<ClientMessage>,
    /// Reply to MAIL, when it was refused.
    mail_refused: Option<Reply>,
    /// Positions in `msg.rcpts` of the recipients the server took.
    accepted: Vec<usize>,
    results: Vec<(usize, RcptResult)>,
}

fn outcome_of(r: &Reply) -> Outcome {
    if r.is_positive() {
        Outcome::Sent
    } else if r.is_permanent() {
        Outcome::Failed
    } else {
        Outcome::Deferred
    }
}

impl Session {
    pub fn new(hostname: &str) -> Session {
        Session {
            hostname: hostname.to_string(),
            expect: VecDeque::from([Expect::Greeting]),
            ext: Extensions::default(),
            pipelining: false,
            ready: false,
            closed: false,
            msg: None,
            mail_refused: None,
            accepted: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Whether a message may be started now.
    pub fn is_ready(&self) -> bool {
        self.ready && !self.closed
    }

    /// The results of the last message, by recipient index (`ClientRcpt::index`).
    pub fn take_results(&mut self) -> Vec<(usize, RcptResult)> {
        std::mem::take(&mut self.results)
    }

    fn mail_command(&self, m: &ClientMessage) -> String {
        let mut c = format!("MAIL FROM:<{}>", m.sender);
        if self.ext.size.is_some() {
            c.push_str(&format!(" SIZE={}", m.size));
        }
        if m.body_8bit && self.ext.eightbitmime {
            c.push_str(" BODY=8BITMIME");
        }
        if m.smtputf8 && self.ext.smtputf8 {
            c.push_str(" SMTPUTF8");
        }
        if self.ext.dsn {
            if let Some(r) = m.ret {
                c.push_str(&format!(" RET={r}"));
            }
            if let Some(e) = &m.envid {
                c.push_str(&format!(" ENVID={}", xtext(e)));
            }
        }
        c
    }

    fn rcpt_command(&self, m: &ClientMessage, i: usize) -> String {
        let r = &m.rcpts[i];
        let mut c = format!("RCPT TO:<{}>", r.address);
        if self.ext.dsn {
            if let Some(n) = &r.notify {
                c.push_str(&format!(" NOTIFY={n}"));
            }
            if let Some(o) = &r.orcpt {
                match o.split_once(';') {
                    Some((t, a)) => c.push_str(&format!(" ORCPT={t};{}", xtext(a))),
                    None => c.push_str(&format!(" ORCPT=rfc822;{}", xtext(o))),
                }
            }
        }
        c
    }

    /// Every recipient of the message not yet decided gets this outcome.
    fn settle_rest(&mut self, outcome: Outcome, text: &str) {
        let Some(m) = &self.msg else { return };
        for r in &m.rcpts {
            if !self.results.iter().any(|(i, _)| *i == r.index) {
                self.results.push((
                    r.index,
                    RcptResult {
                        outcome,
                        text: text.to_string(),
                    },
                ));
            }
        }
    }

    fn settle(&mut self, pos: usize, outcome: Outcome, text: String) {
        let Some(m) = &self.msg else { return };
        let index = m.rcpts[pos].index;
        if !self.results.iter().any(|(i, _)| *i == index) {
            self.results.push((index, RcptResult { outcome, text }));
        }
    }

    /// Start a message. Only when `is_ready`.
    pub fn begin(&mut self, msg: ClientMessage) -> Step {
        self.results.clear();
        self.accepted.clear();
        self.mail_refused = None;
        self.msg = Some(msg);
        if !self.is_ready() {
            return self.fail("4.4.2 the LMTP connection is not ready");
        }
        let m = self.msg.as_ref().expect("just set");
        if let Some(max) = self.ext.size.filter(|max| m.size > *max) {
            let text = format!(
                "552 5.3.4 message size {} exceeds the LMTP server's limit {max}",
                m.size
            );
            self.settle_rest(Outcome::Failed, &text);
            return self.finish();
        }
        if m.smtputf8 && !self.ext.smtputf8 {
            self.settle_rest(
                Outcome::Failed,
                "553 5.6.7 the LMTP server does not support SMTPUTF8",
            );
            return self.finish();
        }
        if m.rcpts.is_empty() {
            return self.finish();
        }
        self.ready = false;
        let mail = self.mail_command(m);
        self.expect.push_back(Expect::Mail);
        if !self.pipelining {
            return Step::Send(vec![mail]);
        }
        let mut lines = vec![mail];
        for i in 0..m.rcpts.len() {
            lines.push(self.rcpt_command(m, i));
            self.expect.push_back(Expect::Rcpt(i));
        }
        lines.push("DATA".into());
        self.expect.push_back(Expect::Data);
        Step::Send(lines)
    }

    /// The message is over (results taken or not): ready for the next.
    fn finish(&mut self) -> Step {
        self.msg = None;
        self.ready = true;
        Step::Ready
    }

    /// The message ended without its body: RSET, so that the next starts
    /// clean whatever the server made of the commands.
    fn reset(&mut self) -> Step {
        self.expect.clear();
        self.expect.push_back(Expect::Rset);
        Step::Send(vec!["RSET".into()])
    }

    fn fail(&mut self, why: &str) -> Step {
        self.settle_rest(Outcome::Deferred, why);
        self.msg = None;
        self.expect.clear();
        self.closed = true;
        self.ready = false;
        Step::Close(why.to_string())
    }

    /// End the session: QUIT (its reply is read and ignored).
    pub fn quit(&mut self) -> Step {
        self.ready = false;
        self.expect.clear();
        self.expect.push_back(Expect::Quit);
        Step::Send(vec!["QUIT".into()])
    }

    /// The connection broke (I/O error, timeout, garbage): the message in
    /// flight is deferred for its undecided recipients.
    pub fn connection_failed(&mut self, why: &str) -> Step {
        self.fail(why)
    }

    /// Feed the next reply.
    pub fn on_reply(&mut self, r: Reply) -> Step {
        let Some(e) = self.expect.pop_front() else {
            return self.fail(&format!("4.4.2 unexpected reply from the LMTP server: {r}"));
        };
        let step = match e {
            Expect::Greeting => {
                if r.code != 220 {
                    return self.fail(&format!("4.4.2 {r} (in reply to the greeting)"));
                }
                self.expect.push_back(Expect::Lhlo);
                return Step::Send(vec![format!("LHLO {}", self.hostname)]);
            }
            Expect::Lhlo => {
                if r.code != 250 {
                    return self.fail(&format!("4.4.2 {r} (in reply to LHLO)"));
                }
                self.ext = Extensions::parse(&r);
                self.pipelining = r
                    .lines
                    .iter()
                    .skip(1)
                    .any(|l| l.trim().eq_ignore_ascii_case("PIPELINING"));
                return self.finish();
            }
            Expect::Mail => {
                if !r.is_positive() {
                    self.settle_rest(outcome_of(&r), &format!("{r} (in reply to MAIL FROM)"));
                    self.mail_refused = Some(r);
                }
                if self.pipelining {
                    Step::Read
                } else if self.mail_refused.is_some() {
                    return self.reset();
                } else {
                    let m = self.msg.as_ref().expect("a message in flight");
                    let line = self.rcpt_command(m, 0);
                    self.expect.push_back(Expect::Rcpt(0));
                    return Step::Send(vec![line]);
                }
            }
            Expect::Rcpt(i) => {
                if self.mail_refused.is_none() {
                    if r.is_positive() {
                        self.accepted.push(i);
                    } else {
                        self.settle(i, outcome_of(&r), format!("{r} (in reply to RCPT TO)"));
                    }
                }
                let n = self.msg.as_ref().map_or(0, |m| m.rcpts.len());
                if self.pipelining {
                    Step::Read
                } else if i + 1 < n {
                    let m = self.msg.as_ref().expect("a message in flight");
                    let line = self.rcpt_command(m, i + 1);
                    self.expect.push_back(Expect::Rcpt(i + 1));
                    return Step::Send(vec![line]);
                } else if self.accepted.is_empty() {
                    return self.reset();
                } else {
                    self.expect.push_back(Expect::Data);
                    return Step::Send(vec!["DATA".into()]);
                }
            }
            Expect::Data => {
                if r.code == 354 {
                    if self.accepted.is_empty() {
                        // RFC 2033 4.2: without a recipient DATA must fail.
                        return self
                            .fail(&format!("4.4.2 {r} (DATA accepted without a recipient)"));
                    }
                    for k in 0..self.accepted.len() {
                        self.expect.push_back(Expect::Delivery(k));
                    }
                    return Step::SendBody;
                }
                if self.mail_refused.is_none() {
                    self.settle_rest(outcome_of(&r), &format!("{r} (in reply to DATA)"));
                }
                return self.reset();
            }
            Expect::Delivery(k) => {
                let pos = self.accepted[k];
                let text = if r.is_positive() {
                    r.text()
                } else {
                    format!("{r} (in reply to end of DATA)")
                };
                self.settle(pos, outcome_of(&r), text);
                Step::Read
            }
            Expect::Rset => {
                if r.code != 250 {
                    return self.fail(&format!("4.4.2 {r} (in reply to RSET)"));
                }
                return self.finish();
            }
            Expect::Quit => {
                self.closed = true;
                return Step::Close("QUIT".into());
            }
        };
        if self.expect.is_empty() {
            return self.finish();
        }
        step
    }
}

/// Drive a session through three messages with the LMTP server's side
/// read from `data` (reply lines, LF-separated). Checks that every command
/// written is one line our own parser takes, and that every recipient of
/// every message ends with exactly one result, whatever the server says or
/// however it breaks off. Panics when one breaks. For cargo-fuzz
/// (`fuzz/fuzz_targets/lmtp_client.rs`).
pub fn fuzz_lmtp_client(data: &[u8]) {
    use super::client::{ClientRcpt, ReplyReader};
    let msgs: Vec<ClientMessage> = (0..3)
        .map(|m| ClientMessage {
            sender: format!("s{m}@x.test"),
            size: 100 * (m as u64 + 1),
            body_8bit: m == 1,
            smtputf8: false,
            ret: Some("HDRS"),
            envid: Some(format!("env +{m}")),
            rcpts: (0..=m)
                .map(|i| ClientRcpt {
                    index: i * 3,
                    address: format!("u{i}@y.test"),
                    notify: Some("SUCCESS,FAILURE".into()),
                    orcpt: Some(format!("rfc822;U{i}+x@y.test")),
                })
                .collect(),
        })
        .collect();
    let check = |step: &Step| {
        if let Step::Send(lines) = step {
            assert!(!lines.is_empty());
            for c in lines {
                assert!(!c.contains(['\r', '\n']), "{c:?}");
                if let Err(e) = crate::smtp::command::parse(c.as_bytes()) {
                    panic!("the client wrote {c:?}, which we refuse: {e:?}");
                }
            }
        }
    };
    let settled = |s: &mut Session, m: &ClientMessage| {
        let results = s.take_results();
        for r in &m.rcpts {
            let n = results.iter().filter(|(i, _)| *i == r.index).count();
            assert_eq!(n, 1, "recipient {} has {n} results", r.index);
        }
        assert_eq!(results.len(), m.rcpts.len());
    };
    let mut s = Session::new("front.test");
    let mut reader = ReplyReader::default();
    let mut lines = data
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let (mut next, mut in_flight, mut quitting) = (0, None, false);
    let mut step = Step::Read;
    loop {
        match step {
            Step::Ready => {
                if let Some(m) = in_flight.take() {
                    settled(&mut s, &msgs[m]);
                }
                step = if next < msgs.len() && !quitting {
                    in_flight = Some(next);
                    next += 1;
                    s.begin(msgs[next - 1].clone())
                } else {
                    quitting = true;
                    s.quit()
                };
                check(&step);
                continue;
            }
            Step::Close(_) => {
                if let Some(m) = in_flight.take() {
                    settled(&mut s, &msgs[m]);
                }
                return;
            }
            _ => {}
        }
        let reply = loop {
            let Some(line) = lines.next() else {
                break Err("connection closed".to_string());
            };
            match reader.feed(line) {
                Ok(Some(r)) => break Ok(r),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        step = match reply {
            Ok(r) => s.on_reply(r),
            Err(e) => s.connection_failed(&e),
        };
        check(&step);
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::ClientRcpt;
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn msg(n: usize) -> ClientMessage {
        ClientMessage {
            sender: "a@x.test".into(),
            size: 100,
            body_8bit: false,
            smtputf8: false,
            ret: None,
            envid: None,
            rcpts: (0..n)
                .map(|i| ClientRcpt {
                    index: 10 + i,
                    address: format!("u{i}@y.test"),
                    notify: None,
                    orcpt: None,
                })
                .collect(),
        }
    }

    fn ready(pipelining: bool) -> Session {
        let mut s = Session::new("front.test");
        assert_eq!(
            s.on_reply(reply(220, &["lmtp"])),
            Step::Send(vec!["LHLO front.test".into()])
        );
        let mut lhlo = vec!["back.test", "8BITMIME", "ENHANCEDSTATUSCODES"];
        if pipelining {
            lhlo.push("PIPELINING");
        }
        assert_eq!(s.on_reply(reply(250, &lhlo)), Step::Ready);
        s
    }

    fn outcomes(s: &mut Session) -> Vec<(usize, Outcome)> {
        let mut r: Vec<(usize, Outcome)> = s
            .take_results()
            .into_iter()
            .map(|(i, r)| (i, r.outcome))
            .collect();
        r.sort_by_key(|(i, _)| *i);
        r
    }

    #[test]
    fn pipelined_messages_on_one_connection() {
        let mut s = ready(true);
        for _ in 0..2 {
            assert_eq!(
                s.begin(msg(3)),
                Step::Send(vec![
                    "MAIL FROM:<a@x.test>".into(),
                    "RCPT TO:<u0@y.test>".into(),
                    "RCPT TO:<u1@y.test>".into(),
                    "RCPT TO:<u2@y.test>".into(),
                    "DATA".into(),
                ])
            );
            assert_eq!(s.on_reply(reply(250, &["ok"])), Step::Read);
            assert_eq!(s.on_reply(reply(250, &["ok"])), Step::Read);
            assert_eq!(s.on_reply(reply(550, &["5.1.1 unknown"])), Step::Read);
            assert_eq!(s.on_reply(reply(250, &["ok"])), Step::Read);
            assert_eq!(s.on_reply(reply(354, &["go"])), Step::SendBody);
            // A reply per accepted recipient, in RCPT order.
            assert_eq!(s.on_reply(reply(250, &["2.0.0 saved"])), Step::Read);
            assert_eq!(s.on_reply(reply(452, &["4.2.2 over quota"])), Step::Ready);
            assert_eq!(
                outcomes(&mut s),
                vec![
                    (10, Outcome::Sent),
                    (11, Outcome::Failed),
                    (12, Outcome::Deferred)
                ]
            );
            assert!(s.is_ready());
        }
        assert_eq!(s.quit(), Step::Send(vec!["QUIT".into()]));
        assert!(matches!(s.on_reply(reply(221, &["bye"])), Step::Close(_)));
    }

    #[test]
    fn one_command_at_a_time_without_pipelining() {
        let mut s = ready(false);
        assert_eq!(
            s.begin(msg(2)),
            Step::Send(vec!["MAIL FROM:<a@x.test>".into()])
        );
        assert_eq!(
            s.on_reply(reply(250, &[])),
            Step::Send(vec!["RCPT TO:<u0@y.test>".into()])
        );
        assert_eq!(
            s.on_reply(reply(450, &[])),
            Step::Send(vec!["RCPT TO:<u1@y.test>".into()])
        );
        assert_eq!(s.on_reply(reply(250, &[])), Step::Send(vec!["DATA".into()]));
        assert_eq!(s.on_reply(reply(354, &[])), Step::SendBody);
        assert_eq!(s.on_reply(reply(250, &[])), Step::Ready);
        assert_eq!(
            outcomes(&mut s),
            vec![(10, Outcome::Deferred), (11, Outcome::Sent)]
        );
        // Nobody accepted: RSET, not DATA.
        s.begin(msg(1));
        s.on_reply(reply(250, &[]));
        assert_eq!(s.on_reply(reply(550, &[])), Step::Send(vec!["RSET".into()]));
        assert_eq!(s.on_reply(reply(250, &[])), Step::Ready);
        assert_eq!(outcomes(&mut s), vec![(10, Outcome::Failed)]);
    }

    #[test]
    fn refusals_of_mail_and_data() {
        let mut s = ready(true);
        s.begin(msg(2));
        assert_eq!(s.on_reply(reply(451, &["4.3.0 later"])), Step::Read);
        assert_eq!(s.on_reply(reply(503, &[])), Step::Read);
        assert_eq!(s.on_reply(reply(503, &[])), Step::Read);
        assert_eq!(s.on_reply(reply(503, &[])), Step::Send(vec!["RSET".into()]));
        assert_eq!(s.on_reply(reply(250, &[])), Step::Ready);
        assert_eq!(
            outcomes(&mut s),
            vec![(10, Outcome::Deferred), (11, Outcome::Deferred)]
        );
        s.begin(msg(1));
        s.on_reply(reply(250, &[]));
        s.on_reply(reply(250, &[]));
        assert_eq!(
            s.on_reply(reply(554, &["5.6.0 no"])),
            Step::Send(vec!["RSET".into()])
        );
        s.on_reply(reply(250, &[]));
        assert_eq!(outcomes(&mut s), vec![(10, Outcome::Failed)]);
    }

    #[test]
    fn broken_connections_defer_what_is_undecided() {
        let mut s = ready(true);
        s.begin(msg(2));
        s.on_reply(reply(250, &[]));
        s.on_reply(reply(550, &[]));
        s.on_reply(reply(250, &[]));
        s.on_reply(reply(354, &[]));
        assert!(matches!(s.connection_failed("4.4.2 reset"), Step::Close(_)));
        assert_eq!(
            outcomes(&mut s),
            vec![(10, Outcome::Failed), (11, Outcome::Deferred)]
        );
        assert!(!s.is_ready());
        assert!(matches!(s.begin(msg(1)), Step::Close(_)));
        assert_eq!(outcomes(&mut s), vec![(10, Outcome::Deferred)]);
        // A bad greeting, a refused LHLO, a reply nobody asked for.
        let mut s = Session::new("x");
        assert!(matches!(s.on_reply(reply(554, &[])), Step::Close(_)));
        let mut s = Session::new("x");
        s.on_reply(reply(220, &[]));
        assert!(matches!(s.on_reply(reply(500, &[])), Step::Close(_)));
        let mut s = ready(true);
        assert!(matches!(s.on_reply(reply(250, &[])), Step::Close(_)));
        // DATA accepted with no recipient is a broken server.
        let mut s = ready(true);
        s.begin(msg(1));
        s.on_reply(reply(250, &[]));
        s.on_reply(reply(550, &[]));
        assert!(matches!(s.on_reply(reply(354, &[])), Step::Close(_)));
    }

    #[test]
    fn fuzz_entry_on_real_dialogues() {
        fuzz_lmtp_client(b"");
        fuzz_lmtp_client(b"220 x\n250-b\n250 PIPELINING\n");
        let mut d = b"220 x\n250-b\n250-DSN\n250 PIPELINING\n".to_vec();
        for m in 0..3 {
            d.extend(b"250 ok\n");
            for _ in 0..=m {
                d.extend(b"250 ok\n");
            }
            d.extend(b"354 go\n");
            for _ in 0..=m {
                d.extend(b"452 4.2.2 full\n");
            }
        }
        d.extend(b"221 bye\n");
        fuzz_lmtp_client(&d);
        fuzz_lmtp_client(b"220 x\n250 b\n250 ok\n550 no\n354 go\n");
        fuzz_lmtp_client(b"220 x\n250 b\n451 later\n250 ok\n");
    }

    #[test]
    fn limits_announced_by_the_server() {
        let mut s = Session::new("x");
        s.on_reply(reply(220, &[]));
        s.on_reply(reply(250, &["b", "SIZE 50", "PIPELINING", "DSN"]));
        assert_eq!(s.begin(msg(1)), Step::Ready);
        assert_eq!(outcomes(&mut s), vec![(10, Outcome::Failed)]);
        let mut m = msg(1);
        m.size = 10;
        m.rcpts[0].notify = Some("NEVER".into());
        let Step::Send(lines) = s.begin(m) else {
            panic!()
        };
        assert_eq!(lines[0], "MAIL FROM:<a@x.test> SIZE=10");
        assert_eq!(lines[1], "RCPT TO:<u0@y.test> NOTIFY=NEVER");
    }
}
