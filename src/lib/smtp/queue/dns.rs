//! A small DNS stub resolver for mail routing: MX, A and AAAA.
//!
//! The message format (building queries, parsing replies: names,
//! compression, records, EDNS) is hickory-proto's, a maintained and fuzzed
//! implementation; this file keeps the questions we ask, the records we
//! use and a small blocking transport. The resolver sends each query over
//! UDP to the name servers of /etc/resolv.conf in turn, with a timeout and
//! a bounded number of attempts, accepts only a reply that matches the
//! query's id and question (from the server's address: the socket is
//! connected), and asks again over TCP when the reply is truncated (TC).
//! `CLASSICD_RESOLV_CONF` names another resolv.conf (tests), whose
//! `nameserver` lines may carry a port (`127.0.0.1:5353`, `[::1]:5353`).
//! Address lookups consult /etc/hosts first.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_MX: u16 = 15;
pub const TYPE_AAAA: u16 = 28;
/// The UDP payload we advertise with EDNS0 and read at most.
const UDP_MAX: usize = 1232;

/// A resource record we care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx(u16, String),
    Cname(String),
}

/// The question of a message (class IN): its name as `name_text` gives
/// it, and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
}

/// A parsed answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    /// The response code, with EDNS's extended bits.
    pub rcode: u16,
    pub truncated: bool,
    /// The first question when it is of class IN.
    pub question: Option<Question>,
    /// (owner name, record) from the answer section.
    pub answers: Vec<(String, Record)>,
    /// A/AAAA records from the additional section (MX glue).
    pub additional: Vec<(String, Record)>,
}

/// Why a lookup gave no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN): permanent.
    NoSuchDomain,
    /// Temporary: timeout, SERVFAIL, no server, malformed answers.
    Temporary(String),
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsError::NoSuchDomain => write!(f, "domain not found"),
            DnsError::Temporary(w) => write!(f, "DNS lookup failed: {w}"),
        }
    }
}

/// A name we ask about: a host name (letters, digits, '-', '_'), at most
/// 253 characters, a trailing dot allowed; "" or "." is the root.
fn query_name(name: &str) -> Result<Name, String> {
    let name = name.trim_end_matches('.');
    let bad = || format!("bad name {name:?}");
    if name.len() > 253 {
        return Err("name too long".into());
    }
    let labels: Vec<&str> = if name.is_empty() {
        Vec::new()
    } else {
        name.split('.').collect()
    };
    for label in &labels {
        if label.is_empty()
            || label.len() > 63
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad());
        }
    }
    Name::from_labels(labels.iter().map(|l| l.as_bytes())).map_err(|_| bad())
}

/// Encode a query for `name` with EDNS0 and recursion desired.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(query_name(name)?, RecordType::from(qtype)));
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_MAX as u16);
    m.set_edns(edns);
    m.to_vec().map_err(|e| e.to_string())
}

/// A name as text: lower case, no trailing dot (the root is ""), bytes
/// other than printable ASCII and '.' as `\DDD`.
pub fn name_text(name: &Name) -> String {
    let mut out = String::new();
    for label in name.iter() {
        if !out.is_empty() {
            out.push('.');
        }
        for &c in label {
            if c.is_ascii_graphic() && c != b'.' {
                out.push(c.to_ascii_lowercase() as char);
            } else {
                out.push_str(&format!("\\{c:03}"));
            }
        }
    }
    out
}

/// The records we use from a section: class IN, of the types we know.
fn records_of(section: &[hickory_proto::rr::Record]) -> Vec<(String, Record)> {
    section
        .iter()
        .filter(|r| r.dns_class == DNSClass::IN)
        .filter_map(|r| {
            let rec = match &r.data {
                RData::A(a) => Record::A(a.0),
                RData::AAAA(a) => Record::Aaaa(a.0),
                RData::MX(mx) => Record::Mx(mx.preference, name_text(&mx.exchange)),
                RData::CNAME(c) => Record::Cname(name_text(&c.0)),
                _ => return None,
            };
            Some((name_text(&r.name), rec))
        })
        .collect()
}

/// What we use of a decoded reply.
pub fn response_of(m: &Message) -> Result<Response, String> {
    if m.metadata.message_type != MessageType::Response {
        return Err("not a response".into());
    }
    let question = m
        .queries
        .first()
        .filter(|q| q.query_class() == DNSClass::IN)
        .map(|q| Question {
            name: name_text(q.name()),
            qtype: u16::from(q.query_type()),
        });
    Ok(Response {
        id: m.metadata.id,
        rcode: u16::from(m.metadata.response_code),
        truncated: m.metadata.truncation,
        question,
        answers: records_of(&m.answers),
        additional: records_of(&m.additionals),
    })
}

/// Parse a reply packet. Records of other types are skipped.
pub fn parse_response(b: &[u8]) -> Result<Response, String> {
    let m = Message::from_vec(b).map_err(|e| e.to_string())?;
    response_of(&m)
}

/// Whether a reply answers our question (same id, same first question).
fn matches_query(id: u16, question: &Question, reply: &Response) -> bool {
    reply.id == id && reply.question.as_ref() == Some(question)
}

/// Name servers from resolv.conf text; the port may be given as an
/// extension (`nameserver 127.0.0.1:5353`).
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if w.next() != Some("nameserver") {
            continue;
        }
        let Some(v) = w.next() else { continue };
        if let Ok(ip) = v.parse::<IpAddr>() {
            out.push(SocketAddr::new(ip, 53));
        } else if let Ok(sa) = v.parse::<SocketAddr>() {
            out.push(sa);
        }
    }
    out.truncate(3);
    out
}

/// Addresses for `name` from hosts(5) text.
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let ip: IpAddr = w.next()?.parse().ok()?;
            w.any(|h| h.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

/// The stub resolver.
pub struct Resolver {
    pub servers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: u32,
    pub hosts: String,
}

/// One query on the wire and what its reply must repeat.
struct Asked {
    id: u16,
    question: Question,
    bytes: Vec<u8>,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

/// The time left before `deadline`, or a timeout error.
fn left(deadline: Instant) -> io::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(timed_out)
}

impl Resolver {
    /// From /etc/resolv.conf (or `CLASSICD_RESOLV_CONF`) and /etc/hosts.
    pub fn from_system() -> Resolver {
        let conf = std::env::var_os("CLASSICD_RESOLV_CONF")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/etc/resolv.conf".into());
        let text = std::fs::read_to_string(&conf).unwrap_or_default();
        let mut servers = parse_resolv_conf(&text);
        if servers.is_empty() {
            servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        Resolver {
            servers,
            timeout: Duration::from_secs(5),
            attempts: 2,
            hosts: std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        }
    }

    /// One query, answered by the first server that replies.
    pub fn query(&self, name: &str, qtype: u16) -> Result<Response, DnsError> {
        let id = random_id();
        let asked = Asked {
            id,
            question: Question {
                name: name.trim_end_matches('.').to_ascii_lowercase(),
                qtype,
            },
            bytes: build_query(id, name, qtype).map_err(DnsError::Temporary)?,
        };
        let mut last = String::from("no name server");
        for _ in 0..self.attempts.max(1) {
            for server in &self.servers {
                match self.ask(server, &asked) {
                    Ok(r) => match r.rcode {
                        0 => return Ok(r),
                        3 => return Err(DnsError::NoSuchDomain),
                        c => last = format!("{server} answered rcode {c} for {name}"),
                    },
                    Err(e) => last = format!("{server}: {e}"),
                }
            }
        }
        Err(DnsError::Temporary(last))
    }

    /// Ask one server over UDP, and over TCP when the reply is truncated.
    fn ask(&self, server: &SocketAddr, q: &Asked) -> io::Result<Response> {
        let r = self.ask_udp(server, q)?;
        if r.truncated {
            return self.ask_tcp(server, q);
        }
        Ok(r)
    }

    fn ask_udp(&self, server: &SocketAddr, q: &Asked) -> io::Result<Response> {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind)?;
        sock.connect(server)?;
        sock.send(&q.bytes)?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = [0u8; UDP_MAX];
        loop {
            sock.set_read_timeout(Some(left(deadline)?))?;
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if crate::net::is_timeout(&e) => return Err(timed_out()),
                Err(e) => return Err(e),
            };
            // A connected UDP socket only gets datagrams from the server;
            // anything else not answering our question is ignored.
            match parse_response(&buf[..n]) {
                Ok(r) if matches_query(q.id, &q.question, &r) => return Ok(r),
                _ => continue,
            }
        }
    }

    /// The same question over TCP (RFC 7766): a two-byte length before
    /// each message; one query, one reply, within the timeout.
    fn ask_tcp(&self, server: &SocketAddr, q: &Asked) -> io::Result<Response> {
        let deadline = Instant::now() + self.timeout;
        let mut tcp = TcpStream::connect_timeout(server, left(deadline)?)?;
        let mut msg = Vec::with_capacity(q.bytes.len() + 2);
        msg.extend_from_slice(&(q.bytes.len() as u16).to_be_bytes());
        msg.extend_from_slice(&q.bytes);
        tcp.set_write_timeout(Some(left(deadline)?))?;
        tcp.write_all(&msg)?;
        let mut read_exact = |buf: &mut [u8]| -> io::Result<()> {
            let mut got = 0;
            while got < buf.len() {
                tcp.set_read_timeout(Some(left(deadline)?))?;
                match tcp.read(&mut buf[got..]) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed",
                        ))
                    }
                    Ok(n) => got += n,
                    Err(e) if crate::net::is_timeout(&e) => return Err(timed_out()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        };
        let mut len = [0u8; 2];
        read_exact(&mut len)?;
        let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
        read_exact(&mut reply)?;
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let r = parse_response(&reply).map_err(invalid)?;
        if !matches_query(q.id, &q.question, &r) {
            return Err(invalid("the TCP reply does not answer the question".into()));
        }
        Ok(r)
    }

    /// Addresses of a host: /etc/hosts, else AAAA and A records (IPv4
    /// first, as loopback labs and most MTAs prefer). A literal is itself.
    pub fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let h = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = h.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let from_hosts = hosts_lookup(&self.hosts, h);
        if !from_hosts.is_empty() {
            return Ok(from_hosts);
        }
        let mut out = Vec::new();
        let mut err = None;
        for t in [TYPE_A, TYPE_AAAA] {
            match self.query(h, t) {
                Ok(r) => out.extend(addresses_in(&r.answers)),
                Err(e) => err = Some(e),
            }
        }
        match (out.is_empty(), err) {
            (false, _) => Ok(out),
            (true, Some(e)) => Err(e),
            (true, None) => Err(DnsError::NoSuchDomain),
        }
    }

    /// Mail exchangers for a domain, best first, each with its addresses.
    pub fn mail_hosts(&self, domain: &str) -> Result<Vec<(String, Vec<IpAddr>)>, MxError> {
        let r = match self.query(domain, TYPE_MX) {
            Ok(r) => r,
            Err(DnsError::NoSuchDomain) => {
                return Err(MxError::Permanent("domain not found".into()))
            }
            Err(e) => return Err(MxError::Temporary(e.to_string())),
        };
        let plan = mx_plan(domain, &r).map_err(MxError::Permanent)?;
        let mut out = Vec::new();
        let mut last_err = None;
        for host in plan {
            let glue: Vec<IpAddr> = addresses_in(
                &r.additional
                    .iter()
                    .filter(|(o, _)| *o == host)
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            if !glue.is_empty() {
                out.push((host, glue));
                continue;
            }
            match self.addresses(&host) {
                Ok(a) => out.push((host, a)),
                Err(e) => last_err = Some(format!("{host}: {e}")),
            }
        }
        if out.is_empty() {
            return Err(MxError::Temporary(last_err.unwrap_or_else(|| {
                format!("no address for the mail hosts of {domain}")
            })));
        }
        Ok(out)
    }
}

/// A query id that an off-path attacker cannot guess.
fn random_id() -> u16 {
    use std::io::Read;
    let mut b = [0u8; 2];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return (t as u16) ^ (std::process::id() as u16);
    }
    u16::from_ne_bytes(b)
}

/// Why mail hosts could not be found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MxError {
    Permanent(String),
    Temporary(String),
}

fn addresses_in(records: &[(String, Record)]) -> Vec<IpAddr> {
    let mut v4: Vec<IpAddr> = Vec::new();
    let mut v6: Vec<IpAddr> = Vec::new();
    for (_, r) in records {
        match r {
            Record::A(a) => v4.push(IpAddr::V4(*a)),
            Record::Aaaa(a) => v6.push(IpAddr::V6(*a)),
            _ => {}
        }
    }
    v4.extend(v6);
    v4
}

/// The hosts to try for a domain from its MX answer: by preference (ties
/// in answer order), or the domain itself when it has no MX (RFC 5321
/// 5.1). A null MX (RFC 7505) is a permanent refusal.
pub fn mx_plan(domain: &str, r: &Response) -> Result<Vec<String>, String> {
    let mut mx: Vec<(u16, String)> = r
        .answers
        .iter()
        .filter_map(|(_, rec)| match rec {
            Record::Mx(p, h) => Some((*p, h.clone())),
            _ => None,
        })
        .collect();
    if mx.is_empty() {
        return Ok(vec![domain.trim_end_matches('.').to_ascii_lowercase()]);
    }
    if mx.iter().any(|(_, h)| h.is_empty()) {
        return Err(format!("{domain} does not accept mail (null MX)"));
    }
    mx.sort_by_key(|(p, _)| *p);
    let mut hosts: Vec<String> = Vec::new();
    for (_, h) in mx {
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts.truncate(10);
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names by hand, as the tests' replies are written byte by byte (not
    /// by the library under test).
    fn encode_name(p: &mut Vec<u8>, name: &str) {
        for label in name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
        {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
    }

    /// A reply builder for tests: answers given as (name, type, rdata).
    pub fn reply(
        id: u16,
        rcode: u8,
        qname: &str,
        qtype: u16,
        answers: &[(&str, u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&[0x81, 0x80 | rcode]);
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        encode_name(&mut p, qname);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        for (name, t, rdata) in answers {
            if *name == qname {
                p.extend_from_slice(&[0xC0, 12]); // pointer to the question
            } else {
                encode_name(&mut p, name);
            }
            p.extend_from_slice(&t.to_be_bytes());
            p.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            p.extend_from_slice(rdata);
        }
        p
    }

    fn mx_rdata(pref: u16, host: &str) -> Vec<u8> {
        let mut v = pref.to_be_bytes().to_vec();
        encode_name(&mut v, host);
        v
    }

    fn question(name: &str, qtype: u16) -> Question {
        Question {
            name: name.into(),
            qtype,
        }
    }

    #[test]
    fn query_bytes() {
        let q = build_query(0x1234, "Example.ORG.", TYPE_MX).unwrap();
        let mut want = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        want.extend_from_slice(b"\x07Example\x03ORG\x00\x00\x0f\x00\x01");
        want.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(q, want);
        assert!(build_query(1, "a..b", TYPE_A).is_err());
        assert!(build_query(1, &"x".repeat(64), TYPE_A).is_err());
        assert!(build_query(1, "a b", TYPE_A).is_err());
        assert!(build_query(1, &"a.".repeat(127), TYPE_A).is_ok()); // 253 characters
        assert!(build_query(1, &"a.".repeat(128), TYPE_A).is_err());
        // The root (a null MX's host) is a name too.
        let root = build_query(2, ".", TYPE_A).unwrap();
        assert_eq!(&root[12..17], b"\x00\x00\x01\x00\x01");
    }

    #[test]
    fn parse_mx_with_compression() {
        let mut answers = vec![
            ("example.org", TYPE_MX, mx_rdata(20, "mx2.example.org")),
            ("example.org", TYPE_MX, mx_rdata(10, "mx1.example.org")),
        ];
        // A compressed rdata name: "mx3" + pointer to the question name.
        let mut rd = 5u16.to_be_bytes().to_vec();
        rd.extend_from_slice(b"\x03MX3\xC0\x0C");
        answers.push(("example.org", TYPE_MX, rd));
        let pkt = reply(7, 0, "Example.org", TYPE_MX, &answers);
        let r = parse_response(&pkt).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.rcode, 0);
        assert_eq!(r.question, Some(question("example.org", TYPE_MX)));
        assert_eq!(r.answers.len(), 3);
        assert_eq!(r.answers[2].1, Record::Mx(5, "mx3.example.org".into()));
        assert_eq!(r.answers[2].0, "example.org");
        assert_eq!(
            mx_plan("example.org", &r).unwrap(),
            vec!["mx3.example.org", "mx1.example.org", "mx2.example.org"]
        );
    }

    #[test]
    fn parse_addresses_and_nodata() {
        let pkt = reply(
            1,
            0,
            "h.example",
            TYPE_A,
            &[
                ("h.example", TYPE_A, vec![192, 0, 2, 1]),
                (
                    "h.example",
                    TYPE_AAAA,
                    Ipv6Addr::LOCALHOST.octets().to_vec(),
                ),
                ("h.example", 16, b"\x03txt".to_vec()),
                (
                    "alias.example",
                    TYPE_CNAME,
                    b"\x01h\x07example\x00".to_vec(),
                ),
            ],
        );
        let r = parse_response(&pkt).unwrap();
        assert_eq!(
            addresses_in(&r.answers),
            vec![
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ]
        );
        assert_eq!(
            r.answers[2],
            ("alias.example".into(), Record::Cname("h.example".into()))
        );
        let empty = parse_response(&reply(1, 0, "d.example", TYPE_MX, &[])).unwrap();
        assert_eq!(mx_plan("D.example", &empty).unwrap(), vec!["d.example"]);
        let null = parse_response(&reply(
            1,
            0,
            "d.example",
            TYPE_MX,
            &[("d.example", TYPE_MX, mx_rdata(0, ""))],
        ))
        .unwrap();
        assert!(mx_plan("d.example", &null).is_err());
        let nx = parse_response(&reply(1, 3, "d.example", TYPE_MX, &[])).unwrap();
        assert_eq!(nx.rcode, 3);
    }

    #[test]
    fn glue_and_extended_rcode_from_a_library_built_reply() {
        use hickory_proto::rr::rdata::{A, MX};
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let mut m = Message::response(5, OpCode::Query);
        m.add_query(Query::query(name("Lab.Test."), RecordType::MX));
        m.add_answer(hickory_proto::rr::Record::from_rdata(
            name("lab.test."),
            60,
            RData::MX(MX::new(10, name("MX.lab.test."))),
        ));
        m.add_additional(hickory_proto::rr::Record::from_rdata(
            name("mx.lab.test."),
            60,
            RData::A(A::new(127, 0, 0, 9)),
        ));
        let r = parse_response(&m.to_vec().unwrap()).unwrap();
        assert_eq!(
            r.answers,
            vec![("lab.test".into(), Record::Mx(10, "mx.lab.test".into()))]
        );
        assert_eq!(
            r.additional,
            vec![("mx.lab.test".into(), Record::A(Ipv4Addr::new(127, 0, 0, 9)))]
        );
        // BADVERS (16) has 0 in the header's four bits: not a success.
        let mut bad = Message::response(5, OpCode::Query);
        bad.add_query(Query::query(name("lab.test."), RecordType::MX));
        bad.metadata.response_code = hickory_proto::op::ResponseCode::BADVERS;
        bad.set_edns(Edns::new());
        assert_eq!(parse_response(&bad.to_vec().unwrap()).unwrap().rcode, 16);
    }

    #[test]
    fn hostile_packets_do_not_crash() {
        // A pointer loop.
        let mut pkt = reply(1, 0, "a.example", TYPE_A, &[]);
        pkt[7] = 1; // AN=1
        pkt.extend_from_slice(&[0xC0, pkt.len() as u8]);
        assert!(parse_response(&pkt).is_err());
        // Every truncation of a good packet fails cleanly or parses.
        let good = reply(
            1,
            0,
            "example.org",
            TYPE_MX,
            &[("example.org", TYPE_MX, mx_rdata(1, "mx.example.org"))],
        );
        for n in 0..good.len() {
            let _ = parse_response(&good[..n]);
        }
        assert!(parse_response(&[0u8; 12]).is_err()); // not a response
                                                      // Random garbage.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let mut p = vec![0u8; 40];
            for b in p.iter_mut() {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                *b = (x >> 16) as u8;
            }
            p[2] |= 0x80;
            let _ = parse_response(&p);
        }
    }

    #[test]
    fn reply_must_match_question() {
        let q = question("example.org", TYPE_MX);
        let m = |pkt: Vec<u8>| matches_query(9, &q, &parse_response(&pkt).unwrap());
        assert!(m(reply(9, 0, "example.org", TYPE_MX, &[])));
        assert!(m(reply(9, 0, "EXAMPLE.org", TYPE_MX, &[])));
        assert!(!m(reply(8, 0, "example.org", TYPE_MX, &[])));
        assert!(!m(reply(9, 0, "example.net", TYPE_MX, &[])));
        assert!(!m(reply(9, 0, "example.org", TYPE_A, &[])));
        let mut chaos = reply(9, 0, "example.org", TYPE_MX, &[]);
        let n = chaos.len();
        chaos[n - 1] = 3; // class CH
        assert!(!m(chaos));
    }

    #[test]
    fn resolv_conf_and_hosts() {
        let s = parse_resolv_conf(
            "# x\nsearch a\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 127.0.0.1:5353\n",
        );
        assert_eq!(
            s,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "127.0.0.1:5353".parse().unwrap()
            ]
        );
        let h = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.0.0.1 mx.lab.test mx # c\n";
        assert_eq!(
            hosts_lookup(h, "MX.lab.test."),
            vec![IpAddr::from([10, 0, 0, 1])]
        );
        assert_eq!(hosts_lookup(h, "localhost").len(), 2);
        assert!(hosts_lookup(h, "other").is_empty());
    }

    /// The id, name and type of a query as a server reads them.
    fn asked(query: &[u8]) -> (u16, String, u16) {
        let m = Message::from_vec(query).unwrap();
        assert_eq!(m.metadata.message_type, MessageType::Query);
        assert!(m.metadata.recursion_desired);
        assert_eq!(
            m.edns.as_ref().map(|e| e.max_payload()),
            Some(UDP_MAX as u16)
        );
        let q = &m.queries[0];
        (
            m.metadata.id,
            name_text(q.name()),
            u16::from(q.query_type()),
        )
    }

    fn resolver(addr: SocketAddr, timeout: Duration) -> Resolver {
        Resolver {
            servers: vec![addr],
            timeout,
            attempts: 1,
            hosts: String::new(),
        }
    }

    #[test]
    fn resolver_against_a_local_fake_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let (id, name, qtype) = asked(&buf[..n]);
                // First garbage and a reply with a wrong id (both
                // ignored), then the real one.
                let _ = server.send_to(b"\x00garbage", from);
                let _ = server.send_to(&reply(id.wrapping_add(1), 0, &name, qtype, &[]), from);
                let ans = if qtype == TYPE_MX {
                    vec![("lab.test", TYPE_MX, mx_rdata(10, "mx.lab.test"))]
                } else {
                    vec![("mx.lab.test", TYPE_A, vec![127, 0, 0, 1])]
                };
                let _ = server.send_to(&reply(id, 0, &name, qtype, &ans), from);
            }
        });
        let r = resolver(addr, Duration::from_secs(2));
        let resp = r.query("lab.test", TYPE_MX).unwrap();
        assert_eq!(resp.answers[0].1, Record::Mx(10, "mx.lab.test".into()));
        let a = r.query("mx.lab.test", TYPE_A).unwrap();
        assert_eq!(addresses_in(&a.answers), vec![IpAddr::from([127, 0, 0, 1])]);
        t.join().unwrap();
    }

    /// A server whose UDP replies are truncated (TC, no answers) and whose
    /// TCP listener, on the same port, answers `tcp_answers` MX records
    /// (with `tcp_id_delta` added to the id).
    fn truncating_server(
        tcp_answers: usize,
        tcp_id_delta: u16,
    ) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let udp = UdpSocket::bind(addr).unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            let (id, name, qtype) = asked(&buf[..n]);
            let mut tc = reply(id, 0, &name, qtype, &[]);
            tc[2] |= 0x02; // TC
            udp.send_to(&tc, from).unwrap();
            let (mut c, _) = tcp.accept().unwrap();
            let mut len = [0u8; 2];
            c.read_exact(&mut len).unwrap();
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            c.read_exact(&mut q).unwrap();
            let (tid, tname, tqtype) = asked(&q);
            assert_eq!((tid, &tname, tqtype), (id, &name, qtype));
            let ans: Vec<(&str, u16, Vec<u8>)> = (0..tcp_answers)
                .map(|i| {
                    (
                        "big.test",
                        TYPE_MX,
                        mx_rdata(i as u16, &format!("mx{i}.big.test")),
                    )
                })
                .collect();
            let full = reply(id.wrapping_add(tcp_id_delta), 0, &name, qtype, &ans);
            assert!(full.len() > UDP_MAX);
            // Written in two pieces, as a stream may deliver it.
            let mut framed = (full.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&full);
            c.write_all(&framed[..3]).unwrap();
            c.flush().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            c.write_all(&framed[3..]).unwrap();
        });
        (addr, t)
    }

    #[test]
    fn a_truncated_reply_is_asked_again_over_tcp() {
        let (addr, t) = truncating_server(100, 0);
        let r = resolver(addr, Duration::from_secs(2));
        let resp = r.query("big.test", TYPE_MX).unwrap();
        assert!(!resp.truncated);
        assert_eq!(resp.answers.len(), 100);
        assert_eq!(mx_plan("big.test", &resp).unwrap()[0], "mx0.big.test");
        t.join().unwrap();
        // A TCP reply to another id is refused.
        let (addr, t) = truncating_server(100, 1);
        let r = resolver(addr, Duration::from_secs(2));
        assert!(matches!(
            r.query("big.test", TYPE_MX),
            Err(DnsError::Temporary(_))
        ));
        t.join().unwrap();
    }

    #[test]
    fn truncated_without_a_tcp_server_is_temporary() {
        // Reserve a port for UDP only: TCP connections to it are refused.
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            let (id, name, qtype) = asked(&buf[..n]);
            let mut tc = reply(id, 0, &name, qtype, &[]);
            tc[2] |= 0x02;
            udp.send_to(&tc, from).unwrap();
        });
        let r = resolver(addr, Duration::from_millis(500));
        assert!(matches!(
            r.query("x.test", TYPE_A),
            Err(DnsError::Temporary(_))
        ));
        t.join().unwrap();
    }

    #[test]
    fn resolver_times_out() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = Resolver {
            attempts: 2,
            ..resolver(silent.local_addr().unwrap(), Duration::from_millis(100))
        };
        assert!(matches!(
            r.query("x.test", TYPE_A),
            Err(DnsError::Temporary(_))
        ));
    }
}
