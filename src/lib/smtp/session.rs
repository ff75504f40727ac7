//! The session driver: reads command lines, runs them through the state
//! machine, performs its actions (recipient lookups, TLS, AUTH, the queue)
//! and writes the replies, batched under PIPELINING. Message data goes to
//! the queue's `Incoming`, which holds a small message in memory (then
//! local mail is delivered here, `queue::direct`) and streams a large one
//! to the spool, never holding it whole.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::aliases::{self, Aliases, Directory, Resolution, Target};
use super::command::{self, NotifyFlags, RetKind};
use super::data::{received_header, DataParser, ReceivedInfo};
use super::queue::{self, Envelope, Incoming, Notify, Queue, Recipient, Ret, Route};
use super::reply::Reply;
use super::state::{self, Action, DataOutcome, State, Transaction};
use super::Config;
use crate::auth::{Account, AuthError, Authenticator};
use crate::calendar::rfc5322_date;
use crate::net::{is_timeout, Conn, Line};
use crate::runtime::config::Settings;
use crate::runtime::{ListenKind, Session};

/// Longest line read, commands and message text alike (RFC 5321 says 512
/// and 1000; we are lenient up to the buffer).
const LINE_MAX: usize = 4094;
/// Message data is handed to the queue in chunks of about this size.
const CHUNK: usize = 32 * 1024;

enum Flow {
    Continue,
    Stop,
}

struct Driver {
    conn: Conn,
    settings: Arc<Settings>,
    auth: Authenticator,
    inetd: bool,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: State,
    out: Vec<u8>,
    peer_ip: IpAddr,
    client: String,
    resolver: Resolver,
    queue: Option<Queue>,
    /// The command being answered, printable and masked, for the log.
    last: String,
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub fn serve(s: Session) {
    let settings = s.settings.clone();
    let (common, config) = (settings.common(), settings.daemon::<Config>());
    let hostname = config.hostname.clone();
    let peer_ip = unmapped(s.conn.peer.ip());
    let mut local_domains = config.local_domains.clone();
    // Our own address as a domain literal is local too (RFC 5321 4.1.3).
    match unmapped(s.conn.local.ip()) {
        IpAddr::V4(a) => local_domains.push(format!("[{a}]")),
        IpAddr::V6(a) => local_domains.push(format!("[ipv6:{a}]")),
    }
    let cfg = state::Config {
        hostname: hostname.clone(),
        local_domains: local_domains.clone(),
        max_size: config.max_message_size,
        tls_available: s.tls.is_some(),
        implicit_tls: s.kind == ListenKind::Tls,
        loopback: peer_ip.is_loopback(),
        submission: s.kind == ListenKind::Extra("submission_listen"),
        relay_client: config.relay_client(peer_ip),
        vrfy: config.vrfy,
        expn: config.expn,
        max_auth_failures: common.login_attempts.max(1),
        max_recipients: 1000,
        max_errors: 20,
    };
    let banner = match &common.banner {
        Some(b) => b.clone(),
        None => format!("{hostname} ESMTP classicd smtpd"),
    };
    let mut d = Driver {
        resolver: Resolver::new(config, s.auth.clone(), local_domains),
        conn: s.conn,
        auth: s.auth,
        inetd: s.inetd,
        tls: s.tls,
        state: State::new(cfg),
        out: Vec::with_capacity(4096),
        client: format!("[{peer_ip}]"),
        peer_ip,
        settings,
        queue: None,
        last: String::new(),
    };
    let greeting = d.state.greeting(&banner);
    d.reply(&greeting);
    if d.flush().is_err() {
        return;
    }
    d.run();
    d.conn.close();
}

impl Driver {
    fn reply(&mut self, r: &Reply) {
        if log::log_enabled!(log::Level::Debug) {
            log::debug!("> {}", r.to_string().trim_end().replace("\r\n", " | "));
        }
        self.out.extend_from_slice(&r.to_bytes());
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.conn.send(&self.out);
        self.out.clear();
        r
    }

    /// The client as logs name it: `helo[ip]`.
    fn client_name(&self) -> String {
        format!("{}{}", self.state.helo().unwrap_or("unknown"), self.client)
    }

    fn run(&mut self) {
        loop {
            // Replies are batched while the client has pipelined more.
            if !self.conn.has_buffered_input() && self.flush().is_err() {
                return;
            }
            let line = match self.conn.read_line(LINE_MAX) {
                Ok(Line::Complete(l, _)) => l,
                Ok(Line::TooLong) => {
                    log::debug!("< (line too long)");
                    self.last = "(line too long)".into();
                    let a = self.state.line_too_long();
                    match self.perform(a) {
                        Flow::Continue => continue,
                        Flow::Stop => return,
                    }
                }
                Ok(Line::Eof) => {
                    log::info!("lost connection with {}", self.client_name());
                    return;
                }
                Err(e) => {
                    self.read_failed(&e);
                    return;
                }
            };
            let action = if self.state.awaiting_auth_line() {
                log::debug!("< ****");
                self.last = "(AUTH response)".into();
                self.state.auth_line(&String::from_utf8_lossy(&line))
            } else {
                self.last = masked(&line);
                log::debug!("< {}", self.last);
                match command::parse(&line) {
                    Ok(c) => self.state.command(c),
                    Err(r) => self.state.bad_command(r),
                }
            };
            if let Flow::Stop = self.perform(action) {
                return;
            }
        }
    }

    /// Every refusal is logged with the client, the command and the reply.
    fn log_refusal(&self, r: &Reply) {
        if r.code >= 400 && r.code != 421 || r.code == 421 && !self.last.is_empty() {
            log::info!(
                "reject: {} from {}: {}",
                self.last.split(' ').next().unwrap_or(""),
                self.client_name(),
                r.to_string().trim_end().replace("\r\n", " | ")
            );
        }
    }

    fn read_failed(&mut self, e: &io::Error) {
        if is_timeout(e) {
            log::info!("timeout from {}", self.client_name());
            let host = self.state.config().hostname.clone();
            self.reply(&Reply::new(
                421,
                "4.4.2",
                format!("{host} Error: timeout exceeded"),
            ));
            let _ = self.flush();
        } else {
            log::info!("read error from {}: {e}", self.client_name());
        }
    }

    fn perform(&mut self, action: Action) -> Flow {
        match action {
            Action::Reply(r) => {
                self.log_refusal(&r);
                self.reply(&r);
                Flow::Continue
            }
            Action::Close(r) => {
                self.log_refusal(&r);
                self.reply(&r);
                let _ = self.flush();
                Flow::Stop
            }
            Action::Lookup { local } => {
                let res = self.resolver.resolve(&local);
                if let Resolution::Unavailable(why) = &res {
                    log::error!("recipient lookup failed for {local}: {why}");
                }
                let a = self.state.rcpt_resolved(res);
                self.perform(a)
            }
            Action::Verify { local, expand } => {
                let res = self.resolver.resolve(&local);
                let r = self.state.verify_resolved(&local, expand, res);
                self.reply(&r);
                Flow::Continue
            }
            Action::StartTls(r) => {
                self.reply(&r);
                if self.flush().is_err() {
                    return Flow::Stop;
                }
                let Some(cfg) = self.tls.clone() else {
                    return Flow::Stop;
                };
                match self.conn.start_tls(&cfg) {
                    Ok(()) => {
                        self.state.tls_started();
                        Flow::Continue
                    }
                    Err(e) => {
                        log::info!("TLS handshake with {} failed: {e}", self.client_name());
                        Flow::Stop
                    }
                }
            }
            Action::Challenge(r) => {
                self.reply(&r);
                Flow::Continue
            }
            Action::Authenticate { user, password } => {
                let _ = self.flush();
                let peer = self.peer_ip.to_string();
                let result = match self.auth.authenticate(&user, &password, &peer) {
                    Ok(login) => Ok(Some(login.account.name.clone())),
                    Err(AuthError::Denied) => Ok(None),
                    Err(AuthError::Unavailable(_)) => Err(()),
                };
                let a = self.state.auth_result(result);
                self.perform(a)
            }
            Action::BeginData => self.data(),
        }
    }

    fn open_queue(&mut self) -> io::Result<&Queue> {
        if self.queue.is_none() {
            let dir = &self.settings.daemon::<Config>().queue_dir;
            self.queue = Some(Queue::open(dir)?);
        }
        Ok(self.queue.as_ref().expect("just opened"))
    }

    fn data(&mut self) -> Flow {
        let incoming = match self.open_queue().and_then(|q| q.begin()) {
            Ok(i) => i,
            Err(e) => {
                log::error!("cannot open a queue file: {e}");
                let r = self.state.data_end(DataOutcome::TempFail);
                self.reply(&r);
                return Flow::Continue;
            }
        };
        let r = self.state.data_start();
        self.reply(&r);
        if !self.conn.has_buffered_input() && self.flush().is_err() {
            return Flow::Stop;
        }
        let (outcome, flow, queued) = self.receive(incoming);
        let r = self.state.data_end(outcome);
        self.reply(&r);
        // Without a master there is no runner: deliver what was queued now,
        // once the client has its answer.
        if let (Some(id), true) = (queued, self.inetd) {
            let flushed = self.conn.has_buffered_input() || self.flush().is_ok();
            queue::deliver_now(&self.settings, &id);
            if !flushed {
                return Flow::Stop;
            }
        }
        flow
    }

    /// Read the message; if it passes the checks, deliver it here when it
    /// is small and local (see `queue::direct`), else commit it to the
    /// queue. The third value is the id of what was committed, if anything.
    fn receive(&mut self, mut incoming: Incoming) -> (DataOutcome, Flow, Option<String>) {
        let txn = self
            .state
            .transaction()
            .cloned()
            .expect("DATA has a transaction");
        let mut parser = DataParser::new(self.state.config().max_size);
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + LINE_MAX + 2);
        let single = (txn.recipients.len() == 1).then(|| txn.recipients[0].address.clone());
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut header = received_header(&ReceivedInfo {
            helo: self.state.helo().unwrap_or("unknown"),
            client_ip: self.peer_ip,
            hostname: &self.state.config().hostname,
            protocol: self.state.protocol(),
            for_rcpt: single.as_deref(),
            date: rfc5322_date(secs),
        });
        // The queue id goes in the "with" line (Postfix style: "id X").
        if let Some(i) = header.find("\r\n\tfor ").or_else(|| header.find("; ")) {
            header.insert_str(i, &format!(" id {}", incoming.id()));
        }
        buf.extend_from_slice(header.as_bytes());
        let mut write_error: Option<io::Error> = None;
        loop {
            match self.conn.read_line(LINE_MAX) {
                Ok(Line::Complete(l, ending)) => {
                    if parser.feed(&l, ending, &mut buf) {
                        break;
                    }
                }
                Ok(Line::TooLong) => parser.line_too_long(),
                Ok(Line::Eof) => {
                    log::info!(
                        "lost connection with {} during DATA; nothing stored",
                        self.client_name()
                    );
                    incoming.abort();
                    return (DataOutcome::TempFail, Flow::Stop, None);
                }
                Err(e) => {
                    incoming.abort();
                    self.read_failed(&e);
                    return (DataOutcome::TempFail, Flow::Stop, None);
                }
            }
            if buf.len() >= CHUNK {
                if write_error.is_none() {
                    write_error = incoming.write_all(&buf).err();
                }
                buf.clear();
            }
        }
        if write_error.is_none() {
            write_error = incoming.write_all(&buf).err();
        }
        let (bare_lf, bare_cr) = parser.anomalies();
        if bare_lf + bare_cr > 0 {
            log::info!(
                "{}: normalised {bare_lf} bare LF and {bare_cr} bare CR in message data",
                self.client_name()
            );
        }
        if let Some(r) = parser.verdict() {
            incoming.abort();
            log::info!(
                "reject: DATA from {}: {}; from=<{}>",
                self.client_name(),
                r.to_string().trim_end(),
                txn.sender
            );
            return (DataOutcome::Refused(r), Flow::Continue, None);
        }
        if let Some(e) = write_error {
            incoming.abort();
            log::error!("queue file write error: {e}");
            return (DataOutcome::TempFail, Flow::Continue, None);
        }
        let mut env = self.envelope(&txn);
        if env.recipients.is_empty() {
            incoming.abort();
            log::info!(
                "discarded: from=<{}>, size={}, client={}",
                txn.sender,
                parser.size(),
                self.client_name()
            );
            return (
                DataOutcome::Queued("(discarded)".into()),
                Flow::Continue,
                None,
            );
        }
        let nrcpt = env.recipients.len();
        let arrived = |id: &str| {
            log::info!(
                "{id}: from=<{}>, size={}, nrcpt={nrcpt}, client={}{}",
                txn.sender,
                parser.size(),
                self.client_name(),
                self.state
                    .auth_user()
                    .map(|u| format!(", sasl_username={u}"))
                    .unwrap_or_default()
            );
        };
        let mut direct = false;
        if let Some(data) = incoming
            .in_memory()
            .filter(|_| queue::direct::eligible(&env))
        {
            arrived(incoming.id());
            let location = &self.settings.daemon::<Config>().mail_location;
            let left = queue::direct::deliver(&self.auth, location, incoming.id(), &env, data);
            if left.is_empty() {
                let id = incoming.id().to_string();
                incoming.abort();
                return (DataOutcome::Queued(id), Flow::Continue, None);
            }
            // The rest goes to the runner, to retry or bounce.
            env.recipients = left;
            direct = true;
        }
        match incoming.commit(&env) {
            Ok(id) => {
                if !direct {
                    arrived(&id);
                }
                (DataOutcome::Queued(id.clone()), Flow::Continue, Some(id))
            }
            Err(e) => {
                // After a partial direct delivery a retry by the client
                // duplicates the message for some recipients: better than
                // a loss for the others.
                log::error!("queue commit failed: {e}");
                (DataOutcome::TempFail, Flow::Continue, None)
            }
        }
    }

    fn envelope(&self, txn: &Transaction) -> Envelope {
        envelope(txn, self.state.helo().unwrap_or("unknown"), self.peer_ip)
    }
}

/// The queue's envelope for a transaction: one recipient per final
/// destination (aliases expanded), duplicates dropped, DSN parameters kept.
fn envelope(txn: &Transaction, helo: &str, peer_ip: IpAddr) -> Envelope {
    let mut recipients: Vec<Recipient> = Vec::new();
    for a in &txn.recipients {
        let notify = notify(a.params.notify);
        for t in &a.targets {
            let (address, route, orcpt) = match t {
                Target::Local(account) => (
                    a.address.clone(),
                    Route::Local {
                        account: account.clone(),
                        mailbox_spec: None,
                    },
                    a.params.orcpt.clone(),
                ),
                Target::Remote(addr) => (
                    addr.clone(),
                    Route::Remote,
                    a.params
                        .orcpt
                        .clone()
                        .or_else(|| (*addr != a.address).then(|| format!("rfc822;{}", a.address))),
                ),
                Target::Discard => continue,
            };
            // One delivery per mailbox, one per remote address.
            let dup = recipients.iter().any(|r| match (&r.route, &route) {
                (Route::Local { account: x, .. }, Route::Local { account: y, .. }) => x == y,
                (Route::Remote, Route::Remote) => r.address.eq_ignore_ascii_case(&address),
                _ => false,
            });
            if !dup {
                recipients.push(Recipient {
                    address,
                    route,
                    notify,
                    orcpt,
                });
            }
        }
    }
    Envelope {
        sender: txn.sender.clone(),
        recipients,
        ret: txn.params.ret.map(|r| match r {
            RetKind::Full => Ret::Full,
            RetKind::Hdrs => Ret::Hdrs,
        }),
        envid: txn.params.envid.clone(),
        smtputf8: txn.params.smtputf8,
        body_8bit: txn.params.body_8bit,
        received_from: format!("{helo} [{peer_ip}]"),
    }
}

fn notify(n: Option<NotifyFlags>) -> Notify {
    match n {
        None => Notify::default(),
        Some(f) => Notify {
            never: f.is_never(),
            success: f.success,
            failure: f.failure,
            delay: f.delay,
        },
    }
}

/// A command line made printable, with AUTH credentials masked.
fn masked(line: &[u8]) -> String {
    let text = crate::auth::printable(&String::from_utf8_lossy(line));
    if text
        .get(..5)
        .is_some_and(|v| v.eq_ignore_ascii_case("AUTH "))
    {
        let mut words = text.split_whitespace();
        let _ = words.next();
        let mech = words.next().unwrap_or("");
        let rest = if words.next().is_some() { " ****" } else { "" };
        return format!("AUTH {mech}{rest}");
    }
    text
}

/// Local recipients: the aliases file (read once per session), accounts
/// through the authenticator, and ~/.forward files.
struct Resolver {
    aliases_file: Option<PathBuf>,
    aliases: Option<Aliases>,
    dir: LocalDirectory,
}

impl Resolver {
    fn new(config: &Config, auth: Authenticator, local_domains: Vec<String>) -> Resolver {
        Resolver {
            aliases_file: config.aliases_file.clone(),
            aliases: None,
            dir: LocalDirectory {
                auth,
                local_domains,
                cache: std::cell::RefCell::new(HashMap::new()),
            },
        }
    }

    fn resolve(&mut self, local: &str) -> Resolution {
        if self.aliases.is_none() {
            self.aliases = Some(load_aliases(self.aliases_file.as_deref()));
        }
        let aliases = self.aliases.as_ref().expect("loaded");
        let (res, warnings) = aliases::resolve(aliases, &self.dir, local);
        for w in warnings {
            log::warn!("resolving {}: {w}", crate::auth::printable(local));
        }
        res
    }
}

fn load_aliases(path: Option<&std::path::Path>) -> Aliases {
    let Some(path) = path else {
        return Aliases::default();
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (a, warnings) = Aliases::parse(&text);
            for w in warnings {
                log::warn!("{}: {w}", path.display());
            }
            a
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Aliases::default(),
        Err(e) => {
            log::error!("{}: {e}", path.display());
            Aliases::default()
        }
    }
}

struct LocalDirectory {
    auth: Authenticator,
    local_domains: Vec<String>,
    cache: std::cell::RefCell<HashMap<String, Option<Account>>>,
}

impl LocalDirectory {
    fn lookup(&self, name: &str) -> Result<Option<Account>, String> {
        if let Some(a) = self.cache.borrow().get(name) {
            return Ok(a.clone());
        }
        let found = match self.auth.lookup(name) {
            Ok(a) => a,
            Err(AuthError::Denied) => None,
            Err(AuthError::Unavailable(why)) => return Err(why),
        };
        self.cache
            .borrow_mut()
            .insert(name.to_string(), found.clone());
        Ok(found)
    }
}

/// Files a recipient's expansion may read are small.
const MAX_LIST_FILE: u64 = 1 << 20;

impl Directory for LocalDirectory {
    fn account(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.lookup(name)?.map(|a| a.name))
    }

    fn forward(&self, account: &str) -> Option<String> {
        use std::io::Read;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let acct = self.lookup(account).ok()??;
        let path = acct.home.join(".forward");
        // No symbolic links, and the checks apply to what was opened.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .ok()?;
        let meta = f.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_LIST_FILE {
            return None;
        }
        // Only a .forward its owner controls alone is honoured.
        if (meta.uid() != acct.uid && meta.uid() != 0) || meta.mode() & 0o022 != 0 {
            log::warn!("{}: owner or mode not trusted; ignored", path.display());
            return None;
        }
        let mut text = String::new();
        Read::by_ref(&mut f)
            .take(MAX_LIST_FILE)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    }

    fn include(&self, path: &str) -> Result<String, String> {
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_file() || meta.len() > MAX_LIST_FILE {
            return Err("not a regular file of reasonable size".into());
        }
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn is_local_domain(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        self.local_domains.contains(&d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::command::{MailParams, RcptParams};
    use crate::smtp::state::Accepted;

    fn accepted(address: &str, targets: Vec<Target>, params: RcptParams) -> Accepted {
        Accepted {
            address: address.into(),
            params,
            targets,
        }
    }

    #[test]
    fn envelope_expands_dedupes_and_keeps_dsn() {
        let txn = Transaction::for_tests(
            "a@far.test",
            MailParams {
                ret: Some(RetKind::Hdrs),
                envid: Some("E1".into()),
                body_8bit: true,
                ..MailParams::default()
            },
            vec![
                accepted(
                    "staff@mx.test",
                    vec![
                        Target::Local("demo".into()),
                        Target::Remote("x@far.test".into()),
                        Target::Discard,
                    ],
                    RcptParams {
                        notify: Some(NotifyFlags::NEVER),
                        orcpt: None,
                    },
                ),
                accepted(
                    "demo@mx.test",
                    vec![Target::Local("demo".into())],
                    RcptParams::default(),
                ),
                accepted(
                    "X@far.test",
                    vec![Target::Remote("X@far.test".into())],
                    RcptParams {
                        notify: None,
                        orcpt: Some("rfc822;X@far.test".into()),
                    },
                ),
            ],
        );
        let env = envelope(&txn, "client", "127.0.0.1".parse().unwrap());
        assert_eq!(env.sender, "a@far.test");
        assert_eq!(env.ret, Some(Ret::Hdrs));
        assert_eq!(env.envid.as_deref(), Some("E1"));
        assert!(env.body_8bit && !env.smtputf8);
        assert_eq!(env.received_from, "client [127.0.0.1]");
        assert_eq!(env.recipients.len(), 2);
        let r0 = &env.recipients[0];
        assert_eq!(r0.address, "staff@mx.test");
        assert_eq!(
            r0.route,
            Route::Local {
                account: "demo".into(),
                mailbox_spec: None
            }
        );
        assert!(r0.notify.never && !r0.notify.failure);
        let r1 = &env.recipients[1];
        assert_eq!(
            (r1.address.as_str(), &r1.route),
            ("x@far.test", &Route::Remote)
        );
        // An expansion records the original recipient for DSNs.
        assert_eq!(r1.orcpt.as_deref(), Some("rfc822;staff@mx.test"));
        // It keeps its RCPT's NOTIFY; the later X@far.test is the same
        // remote mailbox and is not sent twice.
        assert!(r1.notify.never);
    }

    #[test]
    fn default_notify() {
        assert_eq!(notify(None), Notify::default());
        let n = notify(Some(NotifyFlags {
            success: true,
            failure: false,
            delay: false,
        }));
        assert!(n.success && !n.failure && !n.delay && !n.never);
    }

    #[test]
    fn auth_is_masked_in_logs() {
        assert_eq!(masked(b"AUTH PLAIN AGRlbW8AZGVtbw=="), "AUTH PLAIN ****");
        assert_eq!(masked(b"auth login ZGVtbw=="), "AUTH login ****");
        assert_eq!(masked(b"AUTH LOGIN"), "AUTH LOGIN");
        assert_eq!(masked(b"MAIL FROM:<a@b>\r"), "MAIL FROM:<a@b>?");
        assert_eq!(masked("AUTH\u{e9}x".as_bytes()), "AUTH\u{e9}x");
    }
}
