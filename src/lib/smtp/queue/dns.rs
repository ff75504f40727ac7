//! A small DNS stub resolver over UDP for mail routing: MX, A and AAAA.
//!
//! Packet building and parsing are pure functions (tested on bytes); the
//! resolver sends each query to the name servers of /etc/resolv.conf in
//! turn, with a timeout and a bounded number of attempts, and accepts only
//! a reply that matches the query's id, question and server address.
//! `CLASSICD_RESOLV_CONF` names another resolv.conf (tests), whose
//! `nameserver` lines may carry a port (`127.0.0.1:5353`, `[::1]:5353`).
//! Address lookups consult /etc/hosts first.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_MX: u16 = 15;
pub const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
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

/// A parsed answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
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

/// Encode a query for `name` with EDNS0 and recursion desired.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00]); // RD
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]); // QD=1, AR=1
    encode_name(&mut p, name)?;
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT pseudo-record: root name, type, payload size, ext-rcode/flags, rdlen.
    p.push(0);
    p.extend_from_slice(&TYPE_OPT.to_be_bytes());
    p.extend_from_slice(&(UDP_MAX as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Ok(p)
}

fn encode_name(p: &mut Vec<u8>, name: &str) -> Result<(), String> {
    let name = name.trim_end_matches('.');
    if name.len() > 253 {
        return Err("name too long".into());
    }
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("bad name {name:?}"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!("bad name {name:?}"));
            }
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
    }
    p.push(0);
    Ok(())
}

fn u16_at(b: &[u8], i: usize) -> Result<u16, String> {
    b.get(i..i + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| "truncated packet".to_string())
}

/// Read a possibly compressed name at `pos`; returns it (lower-case, no
/// trailing dot) and the position after it in the original sequence.
fn read_name(b: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *b.get(pos).ok_or("truncated name")? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    return Ok((out, end.unwrap_or(pos + 1)));
                }
                let label = b.get(pos + 1..pos + 1 + len).ok_or("truncated label")?;
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
                if out.len() > 1024 {
                    return Err("name too long".into());
                }
                pos += 1 + len;
            }
            0xC0 => {
                let ptr = (u16_at(b, pos)? & 0x3FFF) as usize;
                if end.is_none() {
                    end = Some(pos + 2);
                }
                jumps += 1;
                if jumps > 64 || ptr >= b.len() {
                    return Err("compression loop".into());
                }
                pos = ptr;
            }
            _ => return Err("bad label type".into()),
        }
    }
}

/// Parse a reply packet. Records of other types are skipped.
pub fn parse_response(b: &[u8]) -> Result<Response, String> {
    if b.len() < 12 {
        return Err("short packet".into());
    }
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    if flags & 0x8000 == 0 {
        return Err("not a response".into());
    }
    let qd = u16_at(b, 4)? as usize;
    let an = u16_at(b, 6)? as usize;
    let ns = u16_at(b, 8)? as usize;
    let ar = u16_at(b, 10)? as usize;
    let mut pos = 12;
    for _ in 0..qd {
        let (_, p) = read_name(b, pos)?;
        pos = p + 4;
    }
    let mut sections: [Vec<(String, Record)>; 3] = Default::default();
    for (sec, count) in [(0, an), (1, ns), (2, ar)] {
        for _ in 0..count {
            let (owner, p) = read_name(b, pos)?;
            let rtype = u16_at(b, p)?;
            let class = u16_at(b, p + 2)?;
            let rdlen = u16_at(b, p + 8)? as usize;
            let rd = p + 10;
            let rdata = b.get(rd..rd + rdlen).ok_or("truncated record")?;
            pos = rd + rdlen;
            if class != CLASS_IN {
                continue;
            }
            let rec = match rtype {
                TYPE_A if rdlen == 4 => {
                    Record::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]))
                }
                TYPE_AAAA if rdlen == 16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(rdata);
                    Record::Aaaa(Ipv6Addr::from(a))
                }
                TYPE_MX if rdlen >= 3 => {
                    let pref = u16_at(b, rd)?;
                    let (host, _) = read_name(b, rd + 2)?;
                    Record::Mx(pref, host)
                }
                TYPE_CNAME => Record::Cname(read_name(b, rd)?.0),
                _ => continue,
            };
            sections[sec].push((owner, rec));
        }
    }
    let [answers, _, additional] = sections;
    Ok(Response {
        id,
        rcode: (flags & 0x000F) as u8,
        truncated: flags & 0x0200 != 0,
        answers,
        additional,
    })
}

/// Whether a reply answers our question (same id, same first question).
fn matches_query(query: &[u8], reply: &[u8]) -> bool {
    if reply.len() < 12 || query.len() < 12 || reply[..2] != query[..2] {
        return false;
    }
    // The question section starts at 12 and ends 4 bytes after the name.
    let Ok((qname, qend)) = read_name(query, 12) else {
        return false;
    };
    match read_name(reply, 12) {
        Ok((rname, rend)) => {
            rname == qname && reply.get(rend..rend + 4) == query.get(qend..qend + 4)
        }
        Err(_) => false,
    }
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
        let q = build_query(id, name, qtype).map_err(DnsError::Temporary)?;
        let mut last = String::from("no name server");
        for _ in 0..self.attempts.max(1) {
            for server in &self.servers {
                match self.ask(server, &q) {
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

    fn ask(&self, server: &SocketAddr, q: &[u8]) -> io::Result<Response> {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind)?;
        sock.connect(server)?;
        sock.send(q)?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = [0u8; UDP_MAX];
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "timed out"))?;
            sock.set_read_timeout(Some(left))?;
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if crate::net::is_timeout(&e) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
                }
                Err(e) => return Err(e),
            };
            // A connected UDP socket only gets datagrams from the server;
            // anything not answering our question is ignored.
            if !matches_query(q, &buf[..n]) {
                continue;
            }
            return parse_response(&buf[..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
        }
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
        encode_name(&mut p, qname).unwrap();
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        for (name, t, rdata) in answers {
            if *name == qname {
                p.extend_from_slice(&[0xC0, 12]); // pointer to the question
            } else {
                encode_name(&mut p, name).unwrap();
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
        encode_name(&mut v, host).unwrap();
        v
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
    }

    #[test]
    fn parse_mx_with_compression() {
        let mut answers = vec![
            ("example.org", TYPE_MX, mx_rdata(20, "mx2.example.org")),
            ("example.org", TYPE_MX, mx_rdata(10, "mx1.example.org")),
        ];
        // A compressed rdata name: "mx3" + pointer to the question name.
        let mut rd = 5u16.to_be_bytes().to_vec();
        rd.extend_from_slice(b"\x03mx3\xC0\x0C");
        answers.push(("example.org", TYPE_MX, rd));
        let pkt = reply(7, 0, "example.org", TYPE_MX, &answers);
        let r = parse_response(&pkt).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.rcode, 0);
        assert_eq!(r.answers.len(), 3);
        assert_eq!(r.answers[2].1, Record::Mx(5, "mx3.example.org".into()));
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
        let q = build_query(9, "example.org", TYPE_MX).unwrap();
        assert!(matches_query(&q, &reply(9, 0, "example.org", TYPE_MX, &[])));
        assert!(!matches_query(
            &q,
            &reply(8, 0, "example.org", TYPE_MX, &[])
        ));
        assert!(!matches_query(
            &q,
            &reply(9, 0, "example.net", TYPE_MX, &[])
        ));
        assert!(!matches_query(&q, &reply(9, 0, "example.org", TYPE_A, &[])));
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

    #[test]
    fn resolver_against_a_local_fake_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                let (name, end) = read_name(&buf[..n], 12).unwrap();
                let qtype = u16_at(&buf, end).unwrap();
                // First a reply with a wrong id (ignored), then the real one.
                let _ = server.send_to(&reply(id.wrapping_add(1), 0, &name, qtype, &[]), from);
                let ans = if qtype == TYPE_MX {
                    vec![("lab.test", TYPE_MX, mx_rdata(10, "mx.lab.test"))]
                } else {
                    vec![("mx.lab.test", TYPE_A, vec![127, 0, 0, 1])]
                };
                let _ = server.send_to(&reply(id, 0, &name, qtype, &ans), from);
            }
        });
        let r = Resolver {
            servers: vec![addr],
            timeout: Duration::from_secs(2),
            attempts: 1,
            hosts: String::new(),
        };
        let resp = r.query("lab.test", TYPE_MX).unwrap();
        assert_eq!(resp.answers[0].1, Record::Mx(10, "mx.lab.test".into()));
        let a = r.query("mx.lab.test", TYPE_A).unwrap();
        assert_eq!(addresses_in(&a.answers), vec![IpAddr::from([127, 0, 0, 1])]);
        t.join().unwrap();
    }

    #[test]
    fn resolver_times_out() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = Resolver {
            servers: vec![silent.local_addr().unwrap()],
            timeout: Duration::from_millis(100),
            attempts: 2,
            hosts: String::new(),
        };
        assert!(matches!(
            r.query("x.test", TYPE_A),
            Err(DnsError::Temporary(_))
        ));
    }
}
