//! smtpd's root side: the narrow privileged path the unprivileged dialogue
//! uses (see `delivery`). It resolves recipients (aliases, accounts,
//! ~/.forward, read with the owner checks of `LocalDirectory`) and keeps
//! each answer under its RCPT address, writes the message into the queue as
//! it arrives, and at the end builds the envelope from its own lookups
//! (the dialogue names only the addresses it accepted), then delivers small
//! local mail at once (as each recipient, `queue::direct`) or commits it to
//! the queue, fsynced before the dialogue may say 250. Postfix splits the same work
//! between smtpd, cleanup and local(8); here it is one small module in the
//! connection's monitor.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use super::aliases::{self, Aliases, Directory, Resolution, Target};
use super::command::{MailParams, NotifyFlags, RetKind};
use super::delivery::{Commit, Rcpt, Request, Response};
use super::queue::client::Outcome;
use super::queue::{self, Envelope, Incoming, Notify, Queue, Recipient, Ret, Route};
use super::state::{Accepted, MAX_RECIPIENTS};
use super::Config;
use crate::auth::{Account, AuthError, Authenticator};
use crate::runtime::session::Privileged;

/// The monitor's state for one connection.
struct Path {
    config: Config,
    resolver: Resolver,
    auth: Authenticator,
    queue: Option<Queue>,
    incoming: Option<Incoming>,
    write_error: Option<io::Error>,
    /// Where each RCPT address of this connection goes, by this monitor's
    /// own lookups: the only local destinations an envelope may have.
    by_address: HashMap<String, Vec<Target>>,
    /// Recipients sent ahead of the commit.
    pending: Vec<Rcpt>,
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The local domains of a connection: the configured ones, and our own
/// address as a domain literal (RFC 5321 4.1.3).
pub fn local_domains(config: &Config, local: IpAddr) -> Vec<String> {
    let mut domains = config.local_domains.clone();
    if local.is_unspecified() {
        // A Unix socket's connection: no address of ours to name.
        return domains;
    }
    match unmapped(local) {
        IpAddr::V4(a) => domains.push(format!("[{a}]")),
        IpAddr::V6(a) => domains.push(format!("[ipv6:{a}]")),
    }
    domains
}

/// Answer one request of the dialogue (the `TcpProtocol::privileged` hook;
/// the answer to a told request is dropped, its failure kept for the
/// commit).
pub fn handle(p: &mut Privileged, body: &[u8]) -> Result<Vec<u8>, String> {
    let req = Request::decode(body).map_err(|_| "malformed request".to_string())?;
    if p.state.is_none() {
        let config = p.settings.daemon::<Config>().clone();
        let auth = p.settings.common().authenticator();
        let domains = local_domains(&config, p.local.ip());
        *p.state = Some(Box::new(Path {
            resolver: Resolver::new(&config, auth.clone(), domains),
            config,
            auth,
            queue: None,
            incoming: None,
            write_error: None,
            by_address: HashMap::new(),
            pending: Vec::new(),
        }));
    }
    let path = p
        .state
        .as_mut()
        .and_then(|s| s.downcast_mut::<Path>())
        .ok_or("no state")?;
    let peer_ip = unmapped(p.peer.ip());
    let resp = match req {
        Request::Resolve { address, local } => {
            let res = path.resolver.resolve(&local);
            match &res {
                Resolution::Targets(t) if !address.is_empty() => {
                    // Bounded: a transaction has at most MAX_RECIPIENTS.
                    if path.by_address.len() >= 4 * MAX_RECIPIENTS {
                        path.by_address.clear();
                    }
                    path.by_address.insert(address, t.clone());
                }
                Resolution::Unavailable(why) => {
                    log::error!(
                        "recipient lookup failed for {}: {why}",
                        crate::auth::printable(&local)
                    )
                }
                _ => {}
            }
            let ready = path.queue_ready();
            Response::Resolution(res, ready)
        }
        Request::Begin { header, id_at } => {
            path.pending.clear();
            path.start(header, id_at);
            return Ok(Vec::new());
        }
        Request::Data(chunk) => {
            if let (Some(i), None) = (path.incoming.as_mut(), &path.write_error) {
                path.write_error = i.write_all(&chunk).err();
            }
            return Ok(Vec::new());
        }
        Request::Recipients(list) => {
            if path.pending.len() + list.len() > MAX_RECIPIENTS {
                return Err("too many recipients".into());
            }
            path.pending.extend(list);
            return Ok(Vec::new());
        }
        Request::Abort => {
            if let Some(i) = path.incoming.take() {
                i.abort();
            }
            path.pending.clear();
            return Ok(Vec::new());
        }
        Request::Commit(mut c) => {
            if let Some((header, id_at)) = c.begin.take() {
                path.start(header, id_at);
            }
            if let (Some(i), None) = (path.incoming.as_mut(), &path.write_error) {
                path.write_error = i.write_all(&c.data).err();
            }
            // LMTP delivers here and never relays.
            let relay_ok =
                !c.lmtp && (path.config.relay_client(peer_ip) || p.authenticated.is_some());
            let auth_user = p.authenticated.map(str::to_string);
            let outcome = if c.lmtp {
                path.commit_lmtp(c, peer_ip)
            } else {
                path.commit(c, peer_ip, relay_ok, auth_user.as_deref())
            };
            if let (Response::Queued(id), true) = (&outcome.0, outcome.1 && p.inetd) {
                // Without a master there is no runner: deliver it now.
                queue::deliver_now(p.settings, id);
            }
            outcome.0
        }
    };
    Ok(resp.encode())
}

impl Path {
    /// A new message, starting with its Received header, which gets the
    /// queue id in its "with" line (Postfix style: "id X").
    fn start(&mut self, mut header: String, id_at: u32) {
        if let Some(old) = self.incoming.take() {
            old.abort();
        }
        self.write_error = None;
        match self.begin() {
            Ok(mut i) => {
                let at = header
                    .char_indices()
                    .map(|(n, _)| n)
                    .chain(std::iter::once(header.len()))
                    .find(|&n| n >= id_at as usize)
                    .unwrap_or(header.len());
                header.insert_str(at, &format!(" id {}", i.id()));
                self.write_error = i.write_all(header.as_bytes()).err();
                self.incoming = Some(i);
            }
            Err(e) => log::error!("cannot open a queue file: {e}"),
        }
    }

    /// Whether the queue can be opened (it is, from then on).
    fn queue_ready(&mut self) -> bool {
        if self.queue.is_none() {
            match Queue::open(&self.config.queue_dir) {
                Ok(q) => self.queue = Some(q),
                Err(e) => {
                    log::error!("cannot open the queue: {e}");
                    return false;
                }
            }
        }
        true
    }

    fn begin(&mut self) -> io::Result<Incoming> {
        if self.queue.is_none() {
            self.queue = Some(Queue::open(&self.config.queue_dir)?);
        }
        self.queue.as_ref().expect("just opened").begin()
    }

    /// Where each accepted recipient goes: a local one by this monitor's
    /// own lookup, one elsewhere only if the client may relay. None when
    /// the dialogue names an address it could not have accepted.
    fn destinations(&self, rcpts: Vec<Rcpt>, relay_ok: bool) -> Option<Vec<Accepted>> {
        rcpts
            .into_iter()
            .map(|r| {
                let targets = match self.by_address.get(&r.address) {
                    Some(t) => t.clone(),
                    None if relay_ok => vec![Target::Remote(r.address.clone())],
                    None => return None,
                };
                Some(Accepted {
                    address: r.address,
                    params: r.params,
                    targets,
                })
            })
            .collect()
    }

    /// The end of DATA: deliver or queue. The flag: it went to the queue
    /// (and wants a delivery attempt).
    fn commit(
        &mut self,
        c: Commit,
        peer_ip: IpAddr,
        relay_ok: bool,
        auth_user: Option<&str>,
    ) -> (Response, bool) {
        let Some(incoming) = self.incoming.take() else {
            return (Response::TempFail, false);
        };
        let mut rcpts = std::mem::take(&mut self.pending);
        rcpts.extend(c.recipients);
        let accepted = match self.destinations(rcpts, relay_ok) {
            Some(a) if a.len() <= MAX_RECIPIENTS => a,
            _ => {
                log::warn!(
                    "{}: the dialogue named recipients its lookups did not give; message refused",
                    peer_ip
                );
                incoming.abort();
                return (Response::TempFail, false);
            }
        };
        if let Some(e) = self.write_error.take() {
            incoming.abort();
            log::error!("queue file write error: {e}");
            return (Response::TempFail, false);
        }
        let client = format!("{}[{peer_ip}]", crate::auth::printable(&c.helo));
        let mut env = envelope(&c.sender, &c.params, &accepted, &c.helo, peer_ip);
        if env.recipients.is_empty() {
            incoming.abort();
            log::info!(
                "discarded: from=<{}>, size={}, client={client}",
                c.sender,
                c.size
            );
            return (Response::Queued("(discarded)".into()), false);
        }
        let nrcpt = env.recipients.len();
        let arrived = |id: &str| {
            log::info!(
                "{id}: from=<{}>, size={}, nrcpt={nrcpt}, client={client}{}",
                c.sender,
                c.size,
                auth_user
                    .map(|u| format!(", sasl_username={u}"))
                    .unwrap_or_default()
            );
        };
        let mut direct = false;
        // With mail_location = lmtp:... the mailboxes are elsewhere: the
        // queue hands the message over.
        if let Some(data) = incoming
            .in_memory()
            .filter(|_| self.config.lmtp.is_none() && queue::direct::eligible(&env))
        {
            arrived(incoming.id());
            let left = queue::direct::deliver(
                &self.auth,
                &self.config.mail_location,
                incoming.id(),
                &env,
                data,
            );
            if left.is_empty() {
                let id = incoming.id().to_string();
                incoming.abort();
                return (Response::Queued(id), false);
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
                (Response::Queued(id), true)
            }
            Err(e) => {
                // After a partial direct delivery a retry by the client
                // duplicates the message for some recipients: better than
                // a loss for the others.
                log::error!("queue commit failed: {e}");
                (Response::TempFail, false)
            }
        }
    }
}

impl Path {
    /// The end of DATA under LMTP: deliver to each recipient now and
    /// answer for each (RFC 2033). A recipient whose one mailbox failed
    /// gets that failure as its reply and is not kept: the LMTP client
    /// retries (4xx) or bounces (5xx) it. What cannot be answered that way
    /// (forwarding elsewhere, an alias delivered in part, a message too
    /// big to hold in memory) goes to the queue, which then owns it: the
    /// reply is 250 once it is there on stable storage.
    fn commit_lmtp(&mut self, c: Commit, peer_ip: IpAddr) -> (Response, bool) {
        let Some(incoming) = self.incoming.take() else {
            return (Response::TempFail, false);
        };
        let mut rcpts = std::mem::take(&mut self.pending);
        rcpts.extend(c.recipients);
        let accepted = match self.destinations(rcpts, false) {
            Some(a) if a.len() <= MAX_RECIPIENTS => a,
            _ => {
                log::warn!(
                    "{peer_ip}: the dialogue named recipients its lookups did not give; message refused"
                );
                incoming.abort();
                return (Response::TempFail, false);
            }
        };
        if let Some(e) = self.write_error.take() {
            incoming.abort();
            log::error!("queue file write error: {e}");
            return (Response::TempFail, false);
        }
        let id = incoming.id().to_string();
        let per: Vec<Envelope> = accepted
            .iter()
            .map(|a| {
                envelope(
                    &c.sender,
                    &c.params,
                    std::slice::from_ref(a),
                    &c.helo,
                    peer_ip,
                )
            })
            .collect();
        log::info!(
            "{id}: from=<{}>, size={}, nrcpt={}, client={}[{peer_ip}] (LMTP)",
            c.sender,
            c.size,
            accepted.len(),
            crate::auth::printable(&c.helo)
        );
        let mut to_queue = Envelope {
            recipients: Vec::new(),
            ..envelope(&c.sender, &c.params, &[], &c.helo, peer_ip)
        };
        // Some(reply) decided now; None: in the queue (or not) below.
        let mut replies: Vec<Option<(u16, String)>> = Vec::new();
        let data = incoming
            .in_memory()
            .filter(|_| self.config.lmtp.is_none())
            .map(<[u8]>::to_vec);
        let mut done: HashMap<String, (Outcome, String)> = HashMap::new();
        for (a, env) in accepted.iter().zip(per) {
            if env.recipients.is_empty() {
                replies.push(Some((250, format!("2.0.0 <{}> Ok: discarded", a.address))));
                continue;
            }
            let Some(data) = &data else {
                to_queue.recipients.extend(env.recipients);
                replies.push(None);
                continue;
            };
            let mut sent = 0;
            let mut left = Vec::new();
            let mut failure = None;
            for r in env.recipients {
                let Route::Local { account, .. } = &r.route else {
                    left.push(r);
                    continue;
                };
                let (outcome, text) = done
                    .entry(account.clone())
                    .or_insert_with(|| {
                        queue::direct::deliver_one(
                            &self.auth,
                            &self.config.mail_location,
                            &id,
                            &c.sender,
                            &r,
                            data,
                        )
                    })
                    .clone();
                if outcome == Outcome::Sent {
                    sent += 1;
                } else {
                    log::info!("{id}: to=<{}>: not delivered: {text}", r.address);
                    failure = Some((outcome, text));
                    left.push(r);
                }
            }
            match failure {
                None if left.is_empty() => {
                    replies.push(Some((250, format!("2.0.0 <{}> Ok: delivered", a.address))));
                }
                Some((outcome, text)) if sent == 0 && left.len() == 1 => {
                    replies.push(Some(failure_reply(outcome, &text)));
                }
                _ => {
                    to_queue.recipients.extend(left);
                    replies.push(None);
                }
            }
        }
        let mut queued = None;
        if to_queue.recipients.is_empty() {
            incoming.abort();
        } else {
            queued = Some(match incoming.commit(&to_queue) {
                Ok(id) => (250, format!("Ok: queued as {id}")),
                Err(e) => {
                    log::error!("queue commit failed: {e}");
                    (
                        451,
                        "4.3.0 Error: queue file write error, try again later".into(),
                    )
                }
            });
        }
        let list = replies
            .into_iter()
            .zip(&accepted)
            .map(|(r, a)| match (r, &queued) {
                (Some(r), _) => r,
                (None, Some((250, text))) => (250, format!("2.0.0 <{}> {text}", a.address)),
                (None, Some((code, text))) => (*code, text.clone()),
                (None, None) => (451, "4.3.0 Error: not delivered".into()),
            })
            .collect();
        let went_to_queue = matches!(queued, Some((250, _)));
        (Response::Delivered(list), went_to_queue)
    }
}

/// The LMTP reply for a recipient whose delivery failed: the code its
/// outcome means, the enhanced status its text gives (else a generic one).
fn failure_reply(outcome: Outcome, text: &str) -> (u16, String) {
    let permanent = outcome == Outcome::Failed;
    let mut rest = text.trim();
    // A text may start with a reply code ("550 5.1.1 ...").
    if rest.len() > 4
        && rest.as_bytes()[..3].iter().all(u8::is_ascii_digit)
        && rest.as_bytes()[3] == b' '
    {
        rest = &rest[4..];
    }
    let class = if permanent { '5' } else { '4' };
    let has_status = rest
        .split(' ')
        .next()
        .is_some_and(|w| w.starts_with(class) && w.len() >= 5 && w.split('.').count() == 3);
    let text = if has_status {
        rest.to_string()
    } else if permanent {
        format!("5.0.0 {rest}")
    } else {
        format!("4.3.0 {rest}")
    };
    (if permanent { 550 } else { 451 }, text)
}

/// The queue's envelope for a transaction: one recipient per final
/// destination (aliases expanded), duplicates dropped, DSN parameters kept.
fn envelope(
    sender: &str,
    params: &MailParams,
    accepted: &[Accepted],
    helo: &str,
    peer_ip: IpAddr,
) -> Envelope {
    let mut recipients: Vec<Recipient> = Vec::new();
    for a in accepted {
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
        sender: sender.to_string(),
        recipients,
        ret: params.ret.map(|r| match r {
            RetKind::Full => Ret::Full,
            RetKind::Hdrs => Ret::Hdrs,
        }),
        envid: params.envid.clone(),
        smtputf8: params.smtputf8,
        body_8bit: params.body_8bit,
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
    use crate::smtp::state::{Accepted, Transaction};

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
        let env = envelope(
            &txn.sender,
            &txn.params,
            &txn.recipients,
            "client",
            "127.0.0.1".parse().unwrap(),
        );
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
    fn failure_replies_keep_their_status() {
        assert_eq!(
            failure_reply(Outcome::Failed, "550 5.1.1 <x>: no such local account"),
            (550, "5.1.1 <x>: no such local account".into())
        );
        assert_eq!(
            failure_reply(Outcome::Deferred, "4.2.0 delivery to /m failed: full"),
            (451, "4.2.0 delivery to /m failed: full".into())
        );
        assert_eq!(
            failure_reply(Outcome::Deferred, "cannot"),
            (451, "4.3.0 cannot".into())
        );
        assert_eq!(
            failure_reply(Outcome::Failed, "4.2.0 odd"),
            (550, "5.0.0 4.2.0 odd".into())
        );
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
}
