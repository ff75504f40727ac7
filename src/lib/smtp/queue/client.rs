//! The outbound SMTP client as a state machine: replies in, commands out.
//! No I/O here; `relay.rs` drives it over a socket.
//!
//! One `Transaction` is one connection to one host carrying one message to
//! some of its recipients. Connection-level failures (greeting, EHLO/HELO)
//! say "try the next host"; after MAIL the results are per recipient.

use std::fmt;

/// One complete (possibly multi-line) reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
    /// "CODE text" with the lines joined, for logs and DSNs.
    pub fn text(&self) -> String {
        let mut s = self.code.to_string();
        for l in &self.lines {
            if !l.is_empty() {
                s.push(' ');
                s.push_str(l);
            }
        }
        s
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// The most lines one reply may have.
pub const MAX_REPLY_LINES: usize = 100;
/// The longest reply line we read (RFC 5321 says 512).
pub const MAX_REPLY_LINE: usize = 2000;

/// Collects reply lines into a reply; refuses garbage.
#[derive(Default)]
pub struct ReplyReader {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyReader {
    /// Feed one line (without CRLF). Ok(Some) when the reply is complete.
    pub fn feed(&mut self, line: &[u8]) -> Result<Option<Reply>, String> {
        let text = String::from_utf8_lossy(line);
        let shown: String = text
            .chars()
            .take(200)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let b = line;
        if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&b[0]) {
            return Err(format!("malformed reply {shown:?}"));
        }
        let code: u16 = std::str::from_utf8(&b[..3])
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        let more = match b.get(3) {
            None | Some(b' ') => false,
            Some(b'-') => true,
            _ => return Err(format!("malformed reply {shown:?}")),
        };
        if self.code.is_some_and(|c| c != code) {
            return Err(format!("inconsistent reply codes: {shown:?}"));
        }
        self.code = Some(code);
        let rest: String = shown.chars().skip(4).collect();
        self.lines.push(rest.trim_end().to_string());
        if more {
            if self.lines.len() >= MAX_REPLY_LINES {
                return Err("reply has too many lines".into());
            }
            return Ok(None);
        }
        let r = Reply {
            code,
            lines: std::mem::take(&mut self.lines),
        };
        self.code = None;
        Ok(Some(r))
    }
}

/// What the server said it supports in its EHLO reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    pub starttls: bool,
    pub size: Option<u64>,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
}

impl Extensions {
    pub fn parse(r: &Reply) -> Extensions {
        let mut e = Extensions::default();
        for l in r.lines.iter().skip(1) {
            let mut w = l.split_whitespace();
            let kw = w.next().unwrap_or("").to_ascii_uppercase();
            match kw.as_str() {
                "STARTTLS" => e.starttls = true,
                "8BITMIME" => e.eightbitmime = true,
                "SMTPUTF8" => e.smtputf8 = true,
                "DSN" => e.dsn = true,
                "SIZE" => e.size = w.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0),
                _ => {}
            }
        }
        e
    }
}

/// The outcome for one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Deferred,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RcptResult {
    pub outcome: Outcome,
    /// The remote's reply, or our own explanation.
    pub text: String,
}

/// The end of a transaction with one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostResult {
    /// This host could not take the message at all (bad greeting, EHLO
    /// refused, dropped connection before MAIL): try the next host.
    /// `permanent` when it said so with a 5xx.
    TryNext { permanent: bool, text: String },
    /// Results for every recipient of the transaction, by index.
    Done(Vec<(usize, RcptResult)>),
}

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this command line (CRLF added by the driver), read a reply.
    Send(String),
    /// Run the TLS handshake, then call `tls_started`.
    StartTls,
    /// Send the message body (dot-stuffed, then ".\r\n"), read a reply.
    SendBody,
    /// Send QUIT, read the reply briefly, close; then `result()`.
    Quit,
}

/// One recipient as the client needs it.
#[derive(Clone, Debug)]
pub struct ClientRcpt {
    pub index: usize,
    pub address: String,
    /// NOTIFY= value to pass when the server has DSN (None: do not pass).
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

/// The message as the client needs it.
#[derive(Clone, Debug)]
pub struct ClientMessage {
    pub sender: String,
    pub size: u64,
    pub body_8bit: bool,
    pub smtputf8: bool,
    pub ret: Option<&'static str>,
    pub envid: Option<String>,
    pub rcpts: Vec<ClientRcpt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Mail,
    Rcpt(usize),
    Data,
    Body,
    Quit,
    Finished,
}

/// The client side of one SMTP transaction.
pub struct Transaction {
    st: St,
    hostname: String,
    msg: ClientMessage,
    tls_possible: bool,
    tls_active: bool,
    pub ext: Extensions,
    accepted: Vec<usize>,
    results: Vec<(usize, RcptResult)>,
    host_failure: Option<(bool, String)>,
}

/// RFC 3461 xtext.
pub fn xtext(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

impl Transaction {
    /// `tls_possible`: whether the driver can run STARTTLS (it always can
    /// with rustls; false in tests that want a plain dialogue).
    pub fn new(hostname: &str, msg: ClientMessage, tls_possible: bool) -> Transaction {
        Transaction {
            st: St::Greeting,
            hostname: hostname.to_string(),
            msg,
            tls_possible,
            tls_active: false,
            ext: Extensions::default(),
            accepted: Vec::new(),
            results: Vec::new(),
            host_failure: None,
        }
    }

    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    fn fail_host(&mut self, r: &Reply, what: &str) -> Action {
        self.host_failure = Some((r.is_permanent(), format!("{r} (in reply to {what})")));
        self.st = St::Quit;
        Action::Quit
    }

    /// Every recipient not yet decided gets this outcome.
    fn settle_rest(&mut self, outcome: Outcome, text: &str) {
        for r in &self.msg.rcpts {
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

    fn quit(&mut self) -> Action {
        self.st = St::Quit;
        Action::Quit
    }

    fn mail_command(&self) -> String {
        let mut c = format!("MAIL FROM:<{}>", self.msg.sender);
        if self.ext.size.is_some() {
            c.push_str(&format!(" SIZE={}", self.msg.size));
        }
        if self.msg.body_8bit && self.ext.eightbitmime {
            c.push_str(" BODY=8BITMIME");
        }
        if self.msg.smtputf8 && self.ext.smtputf8 {
            c.push_str(" SMTPUTF8");
        }
        if self.ext.dsn {
            if let Some(r) = self.msg.ret {
                c.push_str(&format!(" RET={r}"));
            }
            if let Some(e) = &self.msg.envid {
                c.push_str(&format!(" ENVID={}", xtext(e)));
            }
        }
        c
    }

    fn rcpt_command(&self, i: usize) -> String {
        let r = &self.msg.rcpts[i];
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

    /// After EHLO/HELO succeeded (and TLS is settled): MAIL, or a refusal
    /// when the server cannot take this message.
    fn begin_mail(&mut self) -> Action {
        if let Some(max) = self.ext.size {
            if self.msg.size > max {
                self.settle_rest(
                    Outcome::Failed,
                    &format!(
                        "552 5.3.4 message size {} exceeds the remote limit {max}",
                        self.msg.size
                    ),
                );
                return self.quit();
            }
        }
        if self.msg.smtputf8 && !self.ext.smtputf8 {
            self.settle_rest(
                Outcome::Failed,
                "553 5.6.7 the remote server does not support SMTPUTF8",
            );
            return self.quit();
        }
        self.st = St::Mail;
        Action::Send(self.mail_command())
    }

    /// Feed the next reply; get what to do.
    pub fn on_reply(&mut self, r: Reply) -> Action {
        match self.st {
            St::Greeting => {
                if r.code != 220 {
                    return self.fail_host(&r, "the greeting");
                }
                self.st = St::Ehlo;
                Action::Send(format!("EHLO {}", self.hostname))
            }
            St::Ehlo => {
                if r.code != 250 {
                    if r.is_permanent() {
                        self.st = St::Helo;
                        return Action::Send(format!("HELO {}", self.hostname));
                    }
                    return self.fail_host(&r, "EHLO");
                }
                self.ext = Extensions::parse(&r);
                if self.ext.starttls && self.tls_possible && !self.tls_active {
                    self.st = St::StartTls;
                    return Action::Send("STARTTLS".into());
                }
                self.begin_mail()
            }
            St::Helo => {
                if r.code != 250 {
                    return self.fail_host(&r, "HELO");
                }
                self.ext = Extensions::default();
                self.begin_mail()
            }
            St::StartTls => {
                if r.code == 220 {
                    return Action::StartTls;
                }
                // Opportunistic: go on in the clear.
                self.begin_mail()
            }
            St::Mail => {
                if !r.is_positive() {
                    let o = if r.is_permanent() {
                        Outcome::Failed
                    } else {
                        Outcome::Deferred
                    };
                    self.settle_rest(o, &format!("{r} (in reply to MAIL FROM)"));
                    return self.quit();
                }
                if self.msg.rcpts.is_empty() {
                    return self.quit();
                }
                self.st = St::Rcpt(0);
                Action::Send(self.rcpt_command(0))
            }
            St::Rcpt(i) => {
                let idx = self.msg.rcpts[i].index;
                if r.is_positive() {
                    self.accepted.push(idx);
                } else {
                    let outcome = if r.is_permanent() {
                        Outcome::Failed
                    } else {
                        Outcome::Deferred
                    };
                    self.results.push((
                        idx,
                        RcptResult {
                            outcome,
                            text: format!("{r} (in reply to RCPT TO)"),
                        },
                    ));
                }
                if i + 1 < self.msg.rcpts.len() {
                    self.st = St::Rcpt(i + 1);
                    return Action::Send(self.rcpt_command(i + 1));
                }
                if self.accepted.is_empty() {
                    return self.quit();
                }
                self.st = St::Data;
                Action::Send("DATA".into())
            }
            St::Data => {
                if r.code != 354 {
                    let o = if r.is_permanent() {
                        Outcome::Failed
                    } else {
                        Outcome::Deferred
                    };
                    self.settle_rest(o, &format!("{r} (in reply to DATA)"));
                    return self.quit();
                }
                self.st = St::Body;
                Action::SendBody
            }
            St::Body => {
                let o = if r.is_positive() {
                    Outcome::Sent
                } else if r.is_permanent() {
                    Outcome::Failed
                } else {
                    Outcome::Deferred
                };
                let text = if o == Outcome::Sent {
                    r.text()
                } else {
                    format!("{r} (in reply to end of DATA)")
                };
                self.settle_rest(o, &text);
                self.quit()
            }
            St::Quit | St::Finished => {
                self.st = St::Finished;
                Action::Quit
            }
        }
    }

    /// The TLS handshake after STARTTLS succeeded: EHLO again.
    pub fn tls_started(&mut self) -> Action {
        self.tls_active = true;
        self.st = St::Ehlo;
        Action::Send(format!("EHLO {}", self.hostname))
    }

    /// The connection failed (I/O error, timeout, garbage from the server).
    /// Before MAIL this host is unusable; after, the undecided recipients
    /// are deferred.
    pub fn connection_failed(&mut self, why: &str) {
        match self.st {
            St::Greeting | St::Ehlo | St::Helo | St::StartTls => {
                if self.host_failure.is_none() {
                    self.host_failure = Some((false, why.to_string()));
                }
            }
            St::Quit | St::Finished => {}
            _ => self.settle_rest(Outcome::Deferred, why),
        }
        self.st = St::Finished;
    }

    /// Whether the dialogue is past the point where a failure matters.
    pub fn settled(&self) -> bool {
        matches!(self.st, St::Quit | St::Finished)
    }

    pub fn result(&self) -> HostResult {
        if let Some((permanent, text)) = &self.host_failure {
            if self.results.is_empty() {
                return HostResult::TryNext {
                    permanent: *permanent,
                    text: text.clone(),
                };
            }
        }
        let mut results = self.results.clone();
        for r in &self.msg.rcpts {
            if !results.iter().any(|(i, _)| *i == r.index) {
                results.push((
                    r.index,
                    RcptResult {
                        outcome: Outcome::Deferred,
                        text: "connection ended before the transaction finished".into(),
                    },
                ));
            }
        }
        HostResult::Done(results)
    }
}

#[cfg(test)]
mod tests {
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
            body_8bit: true,
            smtputf8: false,
            ret: Some("HDRS"),
            envid: Some("id 1".into()),
            rcpts: (0..n)
                .map(|i| ClientRcpt {
                    index: i * 2,
                    address: format!("r{i}@y.test"),
                    notify: Some("SUCCESS,FAILURE".into()),
                    orcpt: Some(format!("rfc822;R{i}+x@y.test")),
                })
                .collect(),
        }
    }

    #[test]
    fn reply_reader() {
        let mut rr = ReplyReader::default();
        assert_eq!(rr.feed(b"250-mx.test hello").unwrap(), None);
        assert_eq!(rr.feed(b"250-SIZE 1000").unwrap(), None);
        let r = rr.feed(b"250 DSN").unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines, vec!["mx.test hello", "SIZE 1000", "DSN"]);
        assert_eq!(rr.feed(b"220").unwrap().unwrap().code, 220);
        assert!(rr.feed(b"hello").is_err());
        assert!(rr.feed(b"999 x").is_err());
        assert!(rr.feed(b"250x").is_err());
        let mut rr = ReplyReader::default();
        rr.feed(b"250-a").unwrap();
        assert!(rr.feed(b"251 b").is_err());
    }

    #[test]
    fn full_dialogue_with_dsn_and_tls() {
        let mut t = Transaction::new("me.test", msg(2), true);
        assert_eq!(
            t.on_reply(reply(220, &["hi"])),
            Action::Send("EHLO me.test".into())
        );
        let ehlo = reply(250, &["mx", "STARTTLS", "SIZE 1000", "8BITMIME", "DSN"]);
        assert_eq!(t.on_reply(ehlo.clone()), Action::Send("STARTTLS".into()));
        assert_eq!(t.on_reply(reply(220, &["go"])), Action::StartTls);
        assert_eq!(t.tls_started(), Action::Send("EHLO me.test".into()));
        assert_eq!(
            t.on_reply(ehlo),
            Action::Send(
                "MAIL FROM:<a@x.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=id+201".into()
            )
        );
        assert_eq!(
            t.on_reply(reply(250, &["ok"])),
            Action::Send(
                "RCPT TO:<r0@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;R0+2Bx@y.test".into()
            )
        );
        assert!(matches!(
            t.on_reply(reply(550, &["5.1.1 no such user"])),
            Action::Send(_)
        ));
        assert_eq!(t.on_reply(reply(250, &["ok"])), Action::Send("DATA".into()));
        assert_eq!(t.on_reply(reply(354, &["go"])), Action::SendBody);
        assert_eq!(t.on_reply(reply(250, &["2.0.0 queued as X"])), Action::Quit);
        assert!(t.tls_active());
        let HostResult::Done(mut res) = t.result() else {
            panic!()
        };
        res.sort_by_key(|(i, _)| *i);
        assert_eq!(res[0].0, 0);
        assert_eq!(res[0].1.outcome, Outcome::Failed);
        assert!(res[0].1.text.contains("550 5.1.1 no such user"));
        assert_eq!(res[1].0, 2);
        assert_eq!(res[1].1.outcome, Outcome::Sent);
    }

    #[test]
    fn plain_server_without_extensions() {
        let mut m = msg(1);
        m.body_8bit = false;
        let mut t = Transaction::new("me.test", m, true);
        t.on_reply(reply(220, &[]));
        assert_eq!(
            t.on_reply(reply(502, &["no EHLO"])),
            Action::Send("HELO me.test".into())
        );
        assert_eq!(
            t.on_reply(reply(250, &["hi"])),
            Action::Send("MAIL FROM:<a@x.test>".into())
        );
        assert_eq!(
            t.on_reply(reply(250, &[])),
            Action::Send("RCPT TO:<r0@y.test>".into())
        );
    }

    #[test]
    fn host_level_failures() {
        let mut t = Transaction::new("me.test", msg(1), true);
        assert_eq!(t.on_reply(reply(554, &["go away"])), Action::Quit);
        assert!(matches!(
            t.result(),
            HostResult::TryNext {
                permanent: true,
                ..
            }
        ));
        let mut t = Transaction::new("me.test", msg(1), true);
        t.on_reply(reply(421, &["busy"]));
        assert!(matches!(
            t.result(),
            HostResult::TryNext {
                permanent: false,
                ..
            }
        ));
        let mut t = Transaction::new("me.test", msg(1), true);
        t.on_reply(reply(220, &[]));
        t.connection_failed("timeout");
        assert!(matches!(
            t.result(),
            HostResult::TryNext {
                permanent: false,
                ..
            }
        ));
    }

    #[test]
    fn transaction_level_failures() {
        // 4xx to MAIL defers all; a drop after RCPT defers the rest.
        let mut t = Transaction::new("me.test", msg(2), false);
        t.on_reply(reply(220, &[]));
        t.on_reply(reply(250, &["x", "STARTTLS"]));
        assert_eq!(t.on_reply(reply(451, &["later"])), Action::Quit);
        let HostResult::Done(r) = t.result() else {
            panic!()
        };
        assert!(r.iter().all(|(_, x)| x.outcome == Outcome::Deferred));
        let mut t = Transaction::new("me.test", msg(2), false);
        t.on_reply(reply(220, &[]));
        t.on_reply(reply(250, &["x"]));
        t.on_reply(reply(250, &[]));
        t.on_reply(reply(250, &[]));
        t.connection_failed("connection reset");
        let HostResult::Done(r) = t.result() else {
            panic!()
        };
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|(_, x)| x.outcome == Outcome::Deferred));
        // 5xx at end of data fails the accepted ones.
        let mut t = Transaction::new("me.test", msg(1), false);
        for x in [220, 250, 250, 250, 354] {
            t.on_reply(reply(x, &[]));
        }
        t.on_reply(reply(554, &["5.7.1 spam"]));
        let HostResult::Done(r) = t.result() else {
            panic!()
        };
        assert_eq!(r[0].1.outcome, Outcome::Failed);
    }

    #[test]
    fn size_and_utf8_limits() {
        let mut m = msg(1);
        m.size = 5000;
        let mut t = Transaction::new("me.test", m, false);
        t.on_reply(reply(220, &[]));
        assert_eq!(t.on_reply(reply(250, &["x", "SIZE 1000"])), Action::Quit);
        let HostResult::Done(r) = t.result() else {
            panic!()
        };
        assert_eq!(r[0].1.outcome, Outcome::Failed);
        let mut m = msg(1);
        m.smtputf8 = true;
        let mut t = Transaction::new("me.test", m, false);
        t.on_reply(reply(220, &[]));
        assert_eq!(t.on_reply(reply(250, &["x"])), Action::Quit);
    }

    #[test]
    fn xtext_encoding() {
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
    }
}
