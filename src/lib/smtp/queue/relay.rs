//! Remote delivery: find the next hop's addresses, connect, and drive the
//! client state machine over a plain or TLS stream with bounded reads and
//! deadlines. Everything that goes wrong becomes a deferral or a failure
//! with the remote's text; nothing here panics on bad input.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::client::{
    Action, ClientMessage, HostResult, Outcome, RcptResult, Reply, ReplyReader, Transaction,
    MAX_REPLY_LINE,
};
use super::dns::{MxError, Resolver};
use super::route::NextHop;
use crate::net::{Line, LineBuf};
use crate::wire::DotStuffer;

/// How long each step may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub greeting: Duration,
    pub command: Duration,
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            greeting: Duration::from_secs(120),
            command: Duration::from_secs(120),
            data_end: Duration::from_secs(300),
        }
    }
}

/// At most this many connection attempts per delivery.
const MAX_CONNECTS: usize = 6;

enum ClientStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl ClientStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(t) => t,
            ClientStream::Tls(s) => &s.sock,
        }
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(t) => t.read(buf),
            ClientStream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(t) => t.write(buf),
            ClientStream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(t) => t.flush(),
            ClientStream::Tls(s) => s.flush(),
        }
    }
}

impl crate::net::ReadTimeout for ClientStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(t)
    }
}

struct Conn {
    s: ClientStream,
    lines: LineBuf,
    peer: String,
}

impl Conn {
    fn read_reply(&mut self, timeout: Duration) -> Result<Reply, String> {
        let until = Instant::now() + timeout;
        let mut rr = ReplyReader::default();
        loop {
            let mut d = crate::net::Deadline {
                s: &mut self.s,
                until,
            };
            match self.lines.read_line(&mut d, MAX_REPLY_LINE) {
                Ok(Line::Complete(l, _)) => {
                    log::debug!("{} < {}", self.peer, String::from_utf8_lossy(&l));
                    if let Some(r) = rr.feed(&l)? {
                        return Ok(r);
                    }
                }
                Ok(Line::TooLong) => return Err("reply line too long".into()),
                Ok(Line::Eof) => return Err("connection closed by the remote".into()),
                Err(e) if crate::net::is_timeout(&e) => {
                    return Err(format!(
                        "timed out after {} s waiting for a reply",
                        timeout.as_secs()
                    ))
                }
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        log::debug!("{} > {line}", self.peer);
        let mut b = Vec::with_capacity(line.len() + 2);
        b.extend_from_slice(line.as_bytes());
        b.extend_from_slice(b"\r\n");
        self.s
            .write_all(&b)
            .and_then(|_| self.s.flush())
            .map_err(|e| format!("write error: {e}"))
    }

    fn start_tls(&mut self, host: &str) -> Result<(), String> {
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_string())
                .map_err(|e| format!("bad TLS server name: {e}"))?,
        };
        let cfg: Arc<rustls::ClientConfig> = crate::net::tls::opportunistic_client_config();
        let conn = ClientConnection::new(cfg, name).map_err(|e| format!("TLS: {e}"))?;
        let placeholder = ClientStream::Plain(self.s.tcp().try_clone().map_err(|e| e.to_string())?);
        let ClientStream::Plain(tcp) = std::mem::replace(&mut self.s, placeholder) else {
            return Err("TLS already active".into());
        };
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn
                .complete_io(&mut s.sock)
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
        }
        self.lines.clear();
        self.s = ClientStream::Tls(Box::new(s));
        Ok(())
    }

    fn send_body(&mut self, data: &mut dyn Read, size: u64) -> Result<(), String> {
        write_stuffed(&mut self.s, data, size)
    }
}

/// Send `size` bytes of spooled message (CRLF text) from `data` as a DATA
/// body: dots doubled at line starts, then the ending dot line.
pub fn write_stuffed(out: &mut dyn Write, data: &mut dyn Read, size: u64) -> Result<(), String> {
    // The spool holds CRLF text: only the dots change on the way out.
    let mut stuffer = DotStuffer::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut wire = Vec::with_capacity(66 * 1024);
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = data
            .read(&mut buf[..want])
            .map_err(|e| format!("reading the queued message: {e}"))?;
        if n == 0 {
            return Err("queued message shorter than recorded".into());
        }
        left -= n as u64;
        wire.clear();
        stuffer.push(&buf[..n], &mut wire);
        out.write_all(&wire)
            .map_err(|e| format!("write error: {e}"))?;
    }
    wire.clear();
    stuffer.finish(&mut wire);
    out.write_all(&wire)
        .and_then(|_| out.flush())
        .map_err(|e| format!("write error: {e}"))
}

/// Drive one transaction over a connected socket.
fn run(
    tcp: TcpStream,
    tls_host: &str,
    peer: String,
    tx: &mut Transaction,
    data: &mut dyn Read,
    size: u64,
    t: &Timeouts,
) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(t.command.max(Duration::from_secs(30))));
    let mut c = Conn {
        s: ClientStream::Plain(tcp),
        lines: LineBuf::new(MAX_REPLY_LINE + 2),
        peer,
    };
    let mut wait = t.greeting;
    loop {
        let reply = match c.read_reply(wait) {
            Ok(r) => r,
            Err(e) => {
                tx.connection_failed(&e);
                return;
            }
        };
        let mut action = tx.on_reply(reply);
        if action == Action::StartTls {
            if let Err(e) = c.start_tls(tls_host) {
                tx.connection_failed(&e);
                return;
            }
            action = tx.tls_started();
        }
        wait = t.command;
        let sent = match action {
            Action::Send(line) => c.send(&line),
            Action::SendBody => {
                wait = t.data_end;
                c.send_body(data, size)
            }
            Action::Quit => {
                let _ = c.send("QUIT");
                let _ = c.read_reply(Duration::from_secs(10).min(t.command));
                if let ClientStream::Tls(s) = &mut c.s {
                    s.conn.send_close_notify();
                    let _ = s.conn.complete_io(&mut s.sock);
                }
                return;
            }
            Action::StartTls => Err("STARTTLS twice".into()),
        };
        if let Err(e) = sent {
            tx.connection_failed(&e);
            return;
        }
    }
}

/// The result of a remote delivery attempt.
pub struct RemoteResult {
    pub results: Vec<(usize, RcptResult)>,
    /// "host[ip]:port" of the last server talked to, or "none".
    pub relay: String,
    /// The server that took the message announced DSN: it sends any
    /// success notification itself.
    pub remote_dsn: bool,
}

fn all(msg: &ClientMessage, outcome: Outcome, text: &str) -> Vec<(usize, RcptResult)> {
    msg.rcpts
        .iter()
        .map(|r| {
            (
                r.index,
                RcptResult {
                    outcome,
                    text: text.to_string(),
                },
            )
        })
        .collect()
}

/// Deliver `msg` (data read from `open_data`, which is called once per
/// connection and must return a reader at the start of the data) to the
/// next hop.
pub fn deliver(
    hostname: &str,
    resolver: &Resolver,
    hop: &NextHop,
    msg: &ClientMessage,
    open_data: &mut dyn FnMut() -> io::Result<Box<dyn Read>>,
    t: &Timeouts,
) -> RemoteResult {
    let (hosts, port): (Vec<(String, Vec<IpAddr>)>, u16) = match hop {
        NextHop::Fixed { host, port } => match resolver.addresses(host) {
            Ok(a) => (vec![(host.clone(), a)], *port),
            Err(e) => {
                return RemoteResult {
                    results: all(msg, Outcome::Deferred, &format!("4.4.3 {host}: {e}")),
                    relay: format!("{host}:{port}"),
                    remote_dsn: false,
                }
            }
        },
        NextHop::Mx(domain) => match resolver.mail_hosts(domain) {
            Ok(h) => (h, 25),
            Err(MxError::Permanent(why)) => {
                return RemoteResult {
                    results: all(msg, Outcome::Failed, &format!("550 5.1.2 {domain}: {why}")),
                    relay: "none".into(),
                    remote_dsn: false,
                }
            }
            Err(MxError::Temporary(why)) => {
                return RemoteResult {
                    results: all(msg, Outcome::Deferred, &format!("4.4.3 {domain}: {why}")),
                    relay: "none".into(),
                    remote_dsn: false,
                }
            }
        },
    };
    let mut last = (false, "no address to connect to".to_string());
    let mut relay = "none".to_string();
    let mut tries = 0;
    for (host, addrs) in &hosts {
        for ip in addrs {
            if tries >= MAX_CONNECTS {
                break;
            }
            tries += 1;
            let sa = SocketAddr::new(*ip, port);
            relay = format!("{host}[{ip}]:{port}");
            let tcp = match TcpStream::connect_timeout(&sa, t.connect) {
                Ok(s) => s,
                Err(e) => {
                    last = (false, format!("4.4.1 connect to {relay}: {e}"));
                    continue;
                }
            };
            let mut data = match open_data() {
                Ok(d) => d,
                Err(e) => {
                    return RemoteResult {
                        results: all(
                            msg,
                            Outcome::Deferred,
                            &format!("4.3.0 cannot read the queued message: {e}"),
                        ),
                        relay,
                        remote_dsn: false,
                    }
                }
            };
            let mut tx = Transaction::new(hostname, msg.clone(), true);
            run(tcp, host, relay.clone(), &mut tx, &mut *data, msg.size, t);
            match tx.result() {
                HostResult::Done(results) => {
                    return RemoteResult {
                        results,
                        relay,
                        remote_dsn: tx.ext.dsn,
                    }
                }
                HostResult::TryNext { permanent, text } => {
                    last = (permanent, format!("{relay} said: {text}"));
                    if !permanent && text.contains("TLS") {
                        // Broken TLS: try the same host in the clear once.
                        if let Ok(tcp) = TcpStream::connect_timeout(&sa, t.connect) {
                            if let Ok(mut data) = open_data() {
                                let mut tx = Transaction::new(hostname, msg.clone(), false);
                                run(tcp, host, relay.clone(), &mut tx, &mut *data, msg.size, t);
                                if let HostResult::Done(results) = tx.result() {
                                    return RemoteResult {
                                        results,
                                        relay,
                                        remote_dsn: tx.ext.dsn,
                                    };
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let outcome = if last.0 {
        Outcome::Failed
    } else {
        Outcome::Deferred
    };
    RemoteResult {
        results: all(msg, outcome, &last.1),
        relay,
        remote_dsn: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::queue::client::ClientRcpt;
    use std::io::BufRead;
    use std::net::TcpListener;

    fn msg() -> ClientMessage {
        ClientMessage {
            sender: "a@x.test".into(),
            size: 17,
            body_8bit: false,
            smtputf8: false,
            ret: None,
            envid: None,
            rcpts: vec![ClientRcpt {
                index: 0,
                address: "b@y.test".into(),
                notify: None,
                orcpt: None,
            }],
        }
    }

    fn resolver() -> Resolver {
        Resolver {
            servers: vec![],
            timeout: Duration::from_millis(10),
            attempts: 1,
            hosts: String::new(),
        }
    }

    /// A fake server: replies to each line by a script; returns the data.
    fn fake(script: Vec<&'static str>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = io::BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut seen = Vec::new();
            let mut it = script.into_iter();
            if let Some(g) = it.next() {
                w.write_all(g.as_bytes()).unwrap();
            }
            let mut in_data = false;
            for reply in it {
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return seen;
                    }
                    seen.push(line.clone());
                    if !in_data || line == ".\r\n" {
                        break;
                    }
                }
                in_data = reply.starts_with("354");
                if reply == "HANG" {
                    std::thread::sleep(Duration::from_secs(2));
                    return seen;
                }
                if w.write_all(reply.as_bytes()).is_err() {
                    return seen;
                }
            }
            seen
        });
        (port, h)
    }

    fn data() -> io::Result<Box<dyn Read>> {
        Ok(Box::new(io::Cursor::new(
            b".x\r\nSubject: t\r\n\r\n".to_vec(),
        )))
    }

    /// Deliver `msg()` to a fake server that answers with `script`.
    fn deliver_to_fake(
        script: Vec<&'static str>,
    ) -> (RemoteResult, std::thread::JoinHandle<Vec<String>>) {
        let (port, seen) = fake(script);
        (deliver_to_port(port), seen)
    }

    /// Deliver `msg()` to whatever listens on loopback `port`.
    fn deliver_to_port(port: u16) -> RemoteResult {
        let hop = NextHop::Fixed {
            host: "127.0.0.1".into(),
            port,
        };
        deliver(
            "me.test",
            &resolver(),
            &hop,
            &msg(),
            &mut data,
            &Timeouts::default(),
        )
    }

    #[test]
    fn delivers_to_a_fake_server() {
        let (r, h) = deliver_to_fake(vec![
            "220 hi\r\n",
            "250-hi\r\n250 8BITMIME\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 2.0.0 queued\r\n",
            "221 bye\r\n",
        ]);
        assert_eq!(r.results[0].1.outcome, Outcome::Sent, "{:?}", r.results);
        let seen = h.join().unwrap();
        assert_eq!(seen[0], "EHLO me.test\r\n");
        assert!(seen.contains(&"..x\r\n".to_string()));
        assert_eq!(seen.last().unwrap(), "QUIT\r\n");
    }

    #[test]
    fn garbage_and_hangs_are_deferrals() {
        let (r, _h) = deliver_to_fake(vec!["220 hi\r\n", "hello there\r\n"]);
        assert_eq!(r.results[0].1.outcome, Outcome::Deferred);
        assert!(
            r.results[0].1.text.contains("malformed"),
            "{}",
            r.results[0].1.text
        );

        let (port, _h) = fake(vec!["220 hi\r\n", "HANG"]);
        let hop = NextHop::Fixed {
            host: "127.0.0.1".into(),
            port,
        };
        let t = Timeouts {
            command: Duration::from_millis(300),
            ..Timeouts::default()
        };
        let started = Instant::now();
        let r = deliver("me.test", &resolver(), &hop, &msg(), &mut data, &t);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(r.results[0].1.outcome, Outcome::Deferred);
        assert!(r.results[0].1.text.contains("timed out"));

        let long = Box::leak(format!("220 {}\r\n", "x".repeat(10_000)).into_boxed_str());
        let (r, _h) = deliver_to_fake(vec![long]);
        assert_eq!(r.results[0].1.outcome, Outcome::Deferred);
    }

    #[test]
    fn permanent_refusals_fail() {
        let (r, _h) = deliver_to_fake(vec![
            "220 hi\r\n",
            "250 hi\r\n",
            "250 ok\r\n",
            "550 5.1.1 unknown user\r\n",
            "221 bye\r\n",
        ]);
        assert_eq!(r.results[0].1.outcome, Outcome::Failed);
        assert!(r.results[0].1.text.contains("550 5.1.1 unknown user"));
    }

    #[test]
    fn refused_connection_defers() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let r = deliver_to_port(port);
        assert_eq!(r.results[0].1.outcome, Outcome::Deferred);
        assert!(r.results[0].1.text.contains("connect to"));
    }
}
