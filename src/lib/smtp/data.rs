//! The DATA body: a pure streaming parser fed one line at a time with its
//! ending as the line reader saw it. The block itself is the shared
//! [`wire::Unstuffer`]'s: dots unstuffed, and an end only at `CRLF . CRLF`
//! (so no SMTP-smuggling variant such as `<LF>.<LF>`, `<CR><LF>.<LF>`,
//! `<LF>.<CR><LF>` or `<CR>.<CR>` ends a message or starts another); each
//! line is stored with CRLF by [`wire::push_crlf_line`]. On top, the SMTP
//! checks: size, NUL bytes, line length and the Received-header hop count.
//! Also the Received header and the RFC 5322 date it carries.

use super::reply::Reply;
use crate::net::Ending;
use crate::wire::{self, DotLine, Unstuffer};

/// More Received headers than this is a mail loop.
pub const MAX_HOPS: u32 = 30;

#[derive(Debug)]
pub struct DataParser {
    max_size: u64,
    size: u64,
    in_headers: bool,
    received: u32,
    bare_lf: u32,
    bare_cr: u32,
    nul: bool,
    too_long: bool,
    block: Unstuffer,
}

impl DataParser {
    /// `max_size`: the largest message accepted, in bytes (0: no limit).
    pub fn new(max_size: u64) -> DataParser {
        DataParser {
            max_size,
            size: 0,
            in_headers: true,
            received: 0,
            bare_lf: 0,
            bare_cr: 0,
            nul: false,
            too_long: false,
            block: Unstuffer::new(),
        }
    }

    /// Feed one line (without its terminator). Appends the unstuffed,
    /// CRLF-terminated content to `out` (nothing once the size limit is
    /// passed) and returns true when this line ended the data.
    pub fn feed(&mut self, line: &[u8], ending: Ending, out: &mut Vec<u8>) -> bool {
        let content = match self.block.line(line, ending) {
            DotLine::End => return true,
            DotLine::Text(t) => t,
        };
        if ending == Ending::Lf {
            // Normalised: a bare LF is taken as the end of a text line, but
            // never as part of the end-of-data sequence.
            self.bare_lf += 1;
        }
        if content.contains(&0) {
            self.nul = true;
        }
        if self.in_headers {
            if content.is_empty() {
                self.in_headers = false;
            } else if content.len() >= 9 && content[..9].eq_ignore_ascii_case(b"received:") {
                self.received += 1;
            }
        }
        self.size += content.len() as u64 + 2;
        if self.max_size != 0 && self.size > self.max_size {
            return false;
        }
        // A bare CR inside a line is neutralised so that no later hop
        // sees one.
        self.bare_cr += wire::push_crlf_line(content, out);
        false
    }

    /// The line reader dropped a line longer than its buffer.
    pub fn line_too_long(&mut self) {
        self.too_long = true;
    }

    pub fn ended(&self) -> bool {
        self.block.ended()
    }

    /// Bytes of message content seen (unstuffed, CRLF endings).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn received_headers(&self) -> u32 {
        self.received
    }

    /// Bare LFs and bare CRs that were normalised.
    pub fn anomalies(&self) -> (u32, u32) {
        (self.bare_lf, self.bare_cr)
    }

    /// After the end: None if the message may be queued, else the refusal.
    pub fn verdict(&self) -> Option<Reply> {
        if self.too_long {
            return Some(Reply::new(500, "5.5.2", "Line too long; message refused"));
        }
        if self.nul {
            return Some(Reply::new(554, "5.6.0", "Message contains NUL characters"));
        }
        if self.max_size != 0 && self.size > self.max_size {
            return Some(Reply::new(552, "5.3.4", "Message size exceeds fixed limit"));
        }
        if self.received > MAX_HOPS {
            return Some(Reply::new(
                554,
                "5.4.6",
                "Too many hops (Received headers): mail loop",
            ));
        }
        None
    }
}

/// What the Received header says about the session.
pub struct ReceivedInfo<'a> {
    pub helo: &'a str,
    pub client_ip: std::net::IpAddr,
    pub hostname: &'a str,
    /// SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP... (RFC 3848/6531)
    pub protocol: String,
    /// The recipient named when there is only one.
    pub for_rcpt: Option<&'a str>,
    pub date: String,
}

/// The Received header line(s), CRLF-terminated, folded.
pub fn received_header(r: &ReceivedInfo) -> String {
    let helo: String = r
        .helo
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_graphic() && c != '(' && c != ')' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ip = match r.client_ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("IPv6:{v6}"),
        },
        v4 => v4.to_string(),
    };
    let mut h = format!(
        "Received: from {helo} ([{ip}])\r\n\tby {} (classicd smtpd) with {}",
        r.hostname, r.protocol
    );
    if let Some(rcpt) = r.for_rcpt {
        h.push_str(&format!("\r\n\tfor <{rcpt}>"));
    }
    h.push_str(&format!("; {}\r\n", r.date));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split raw DATA bytes the way `LineBuf` does (on LF; CRLF or bare LF)
    /// and run them through the parser until the end.
    fn run(raw: &[u8], max: u64) -> (Vec<u8>, bool, DataParser, Vec<u8>) {
        let mut p = DataParser::new(max);
        let mut out = Vec::new();
        let mut rest = raw;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, ending) = if pos > 0 && rest[pos - 1] == b'\r' {
                (&rest[..pos - 1], Ending::CrLf)
            } else {
                (&rest[..pos], Ending::Lf)
            };
            rest = &rest[pos + 1..];
            if p.feed(line, ending, &mut out) {
                return (out, true, p, rest.to_vec());
            }
        }
        (out, false, p, rest.to_vec())
    }

    #[test]
    fn plain_message_and_unstuffing() {
        let (out, end, p, rest) = run(b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n", 0);
        assert!(end);
        assert_eq!(out, b"Subject: x\r\n\r\n.leading dot\r\n");
        assert_eq!(rest, b"QUIT\r\n");
        assert!(p.verdict().is_none());
        assert_eq!(p.size(), out.len() as u64);
    }

    /// Every smuggling variant: the fake end followed by an injected second
    /// transaction must stay inside the first message, and only the real
    /// CRLF.CRLF ends it.
    #[test]
    fn smuggling_variants_never_end_the_message() {
        let inject = b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nforged\r\n";
        let variants: [&[u8]; 9] = [
            b"body\n.\n",         // LF.LF
            b"body\r\n.\n",       // CRLF.LF
            b"body\n.\r\n",       // LF.CRLF
            b"body\r.\r\n",       // CR.CRLF
            b"body\r.\r",         // CR.CR
            b"body\r\n.\r",       // CRLF.CR
            b"body\r.\n",         // CR.LF
            b"body\r\n\x00.\r\n", // NUL.CRLF
            b"body\r\n .\r\n",    // SP.CRLF
        ];
        for v in variants {
            let mut raw = b"Subject: t\r\n\r\n".to_vec();
            raw.extend_from_slice(v);
            raw.extend_from_slice(inject);
            raw.extend_from_slice(b".\r\nQUIT\r\n");
            let (out, end, p, rest) = run(&raw, 0);
            assert!(end, "{v:?}");
            assert_eq!(rest, b"QUIT\r\n", "{v:?}: ended early");
            // The injected commands are content of the one message.
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("MAIL FROM:<evil@x>\r\n"), "{v:?}");
            assert!(text.contains("forged\r\n"), "{v:?}");
            // What is stored has CRLF line ends only, and never a bare CR
            // or bare LF that a later hop could take for a line end.
            for (i, &b) in out.iter().enumerate() {
                if b == b'\n' {
                    assert_eq!(out[i - 1], b'\r', "{v:?}");
                }
                if b == b'\r' {
                    assert_eq!(out.get(i + 1), Some(&b'\n'), "{v:?}");
                }
            }
            // And it never stores a line that is a lone dot (the queue would
            // stuff it anyway, but a lone "." is the old-format end marker).
            let _ = p;
        }
    }

    #[test]
    fn lone_dot_with_bare_lf_is_content() {
        let (out, end, p, _) = run(b"a\n.\nb\r\n.\r\n", 0);
        assert!(end);
        assert_eq!(out, b"a\r\n.\r\nb\r\n");
        assert_eq!(p.anomalies(), (2, 0));
        // <LF>.<CR><LF> is not the end either: the dot line must follow a CRLF.
        let (out, end, _, _) = run(b"a\n.\r\nb\r\n.\r\n", 0);
        assert!(end);
        assert_eq!(out, b"a\r\n.\r\nb\r\n");
        // An empty message ends at once.
        let (out, end, _, _) = run(b".\r\n", 0);
        assert!(end && out.is_empty());
    }

    #[test]
    fn bare_cr_neutralised() {
        let (out, end, p, _) = run(b"a\rb\r\r\n.\r\n", 0);
        assert!(end);
        assert_eq!(out, b"a b \r\n");
        assert_eq!(p.anomalies(), (0, 2));
    }

    #[test]
    fn size_limit() {
        let (out, end, p, _) = run(b"0123456789\r\n0123456789\r\n.\r\n", 15);
        assert!(end);
        assert_eq!(out, b"0123456789\r\n");
        assert_eq!(p.verdict().unwrap().code, 552);
        let (_, _, p, _) = run(b"0123456789\r\n.\r\n", 12);
        assert!(p.verdict().is_none());
    }

    #[test]
    fn nul_and_long_lines_refused() {
        let (_, end, p, _) = run(b"a\0b\r\n.\r\n", 0);
        assert!(end);
        assert_eq!(p.verdict().unwrap().status, Some("5.6.0"));
        let mut p = DataParser::new(0);
        p.line_too_long();
        assert_eq!(
            p.verdict().unwrap().to_string(),
            "500 5.5.2 Line too long; message refused\r\n"
        );
    }

    #[test]
    fn hop_count() {
        let mut raw = Vec::new();
        for _ in 0..MAX_HOPS {
            raw.extend_from_slice(b"Received: from x by y; date\r\n");
        }
        let mut ok = raw.clone();
        ok.extend_from_slice(b"\r\nReceived: in the body does not count\r\n.\r\n");
        let (_, _, p, _) = run(&ok, 0);
        assert_eq!(p.received_headers(), MAX_HOPS);
        assert!(p.verdict().is_none());
        raw.extend_from_slice(b"RECEIVED: one more\r\n\r\nbody\r\n.\r\n");
        let (_, _, p, _) = run(&raw, 0);
        let v = p.verdict().unwrap();
        assert_eq!((v.code, v.status), (554, Some("5.4.6")));
    }

    #[test]
    fn received_header_format() {
        let h = received_header(&ReceivedInfo {
            helo: "client (evil)\r\n",
            client_ip: "::ffff:127.0.0.1".parse().unwrap(),
            hostname: "mx.example",
            protocol: "ESMTPS".into(),
            for_rcpt: Some("demo@mx.example"),
            date: "Thu, 1 Jan 1970 00:00:00 +0000".into(),
        });
        assert_eq!(
            h,
            "Received: from client__evil___ ([127.0.0.1])\r\n\tby mx.example (classicd smtpd) with ESMTPS\r\n\tfor <demo@mx.example>; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}
