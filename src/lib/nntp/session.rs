//! nntpd's dialogue, in the unprivileged pre-login process of the
//! privilege split, for the whole session: readers mostly never log in,
//! and AUTHINFO only proves a client to the monitor (as smtpd's AUTH
//! does), so the process stays nopriv_user in its empty chroot and is
//! reused for the next connections. It holds no spool file: every read
//! comes as a descriptor the monitor opened after checking the name, and
//! every article goes to the monitor, which checks it again and stores it
//! (see `request`, answered by `privileged`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::command::{self, ListKind, Part, Range};
use super::request::{self, Kind, ListFile, Outcome, Piece, Request, Response, Want};
use super::spool::{history, overview};
use super::state::{self, Action, Group, Locator, Rights, State};
use super::wildmat::Wildmat;
use super::Config;
use crate::net::dialogue::{self, Dialogue, Flow, LineProtocol, Silence};
use crate::net::{is_timeout, Ending, LineRef};
use crate::runtime::session::{Monitor, PreLogin, Privileged, TcpProtocol, Verdict};
use crate::runtime::ListenKind;

/// Longest line of an article (RFC 5536 says 998; news has longer ones).
pub const ARTICLE_LINE_MAX: usize = 64 * 1024 - 2;
/// TAKETHIS articles stored together (one fdatasync for them all).
const BATCH_ARTICLES: usize = 64;
const BATCH_BYTES: usize = 8 << 20;

/// nntpd in the privilege split.
pub struct Nntp;

pub static NNTP: Nntp = Nntp;

impl TcpProtocol for Nntp {
    fn prelogin(&self, s: PreLogin) {
        let settings = s.settings.clone();
        let config = settings.daemon::<Config>().clone();
        let peer_ip = unmapped(s.conn.peer.ip());
        let banner = match &settings.common().banner {
            Some(b) => b.clone(),
            None => format!("{} classicd nntpd ready", config.path_identity),
        };
        let cfg = state::Config {
            hostname: config.path_identity.clone(),
            tls_available: s.tls.is_some(),
            tls_active: s.kind == ListenKind::Tls,
            loopback: peer_ip.is_loopback(),
            max_errors: 50,
        };
        let mut d = Driver {
            d: Dialogue::new(s.conn, s.tls, command::MAX_LINE),
            state: State::new(cfg, Rights::default()),
            monitor: s.monitor,
            config,
            overview: None,
            batch: Vec::new(),
            batch_bytes: 0,
            pieces: Vec::new(),
            pieces_size: 0,
            client: peer_ip.to_string(),
        };
        let Some(rights) = d.rights() else {
            d.d.reply(b"400 Service temporarily unavailable\r\n");
            let _ = d.d.flush();
            return;
        };
        d.state.set_rights(rights);
        let greeting = d.state.greeting(&banner);
        d.d.reply(&greeting);
        dialogue::run(&mut d);
        d.commit_batch();
    }

    fn privileged(&self, p: &mut Privileged, request: &[u8]) -> Result<Vec<u8>, String> {
        super::privileged::handle(p, request)
    }

    /// Readers never log in: AUTHINFO proves them, the process stays who
    /// it is (and is reused, as smtpd's).
    fn logins(&self) -> bool {
        false
    }
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn this_year() -> i64 {
    crate::calendar::utc(now()).0
}

struct Driver {
    d: Dialogue,
    state: State,
    monitor: Monitor,
    config: Config,
    /// The selected group's overview.
    overview: Option<File>,
    /// TAKETHIS articles handed to the monitor, not committed yet.
    batch: Vec<(Kind, String)>,
    batch_bytes: usize,
    /// Articles of the batch not yet handed over (they go together).
    pieces: Vec<Piece>,
    pieces_size: usize,
    client: String,
}

/// How reading an article's block ended.
enum Block {
    /// The text (canonical: CRLF, unstuffed), or why it cannot be taken.
    Done(Result<Vec<u8>, String>),
    /// The client went away (or timed out) in the middle.
    Lost,
}

impl LineProtocol for Driver {
    fn dialogue(&mut self) -> &mut Dialogue {
        &mut self.d
    }

    fn redact(&self, line: &[u8]) -> String {
        masked(line)
    }

    fn line(&mut self, line: &[u8], _: Ending) -> Flow {
        let action = match command::parse(line, this_year()) {
            Ok(c) => {
                if !matches!(c, command::Command::Takethis(_)) {
                    // Replies go out in order: the batch's first.
                    self.commit_batch();
                }
                self.state.handle(c)
            }
            Err(e) => {
                self.commit_batch();
                log::info!("{}: bad command: {}", self.client, masked(line));
                self.state.bad_command(e)
            }
        };
        self.perform(action)
    }

    fn too_long(&mut self) -> Flow {
        self.commit_batch();
        let a = self.state.line_too_long();
        self.perform(a)
    }

    fn silent(&mut self, _: Silence) {
        self.commit_batch();
        self.d.reply(&State::timeout_reply());
    }

    fn closed(&mut self) {
        self.commit_batch();
    }

    fn tls_started(&mut self) {
        self.state.tls_started();
    }
}

/// A command line made printable, the password of AUTHINFO PASS masked.
fn masked(line: &[u8]) -> String {
    let text = crate::auth::printable(&String::from_utf8_lossy(line));
    let upper = text.trim_start().to_ascii_uppercase();
    if upper.starts_with("AUTHINFO") && upper.split_whitespace().nth(1) == Some("PASS") {
        return "AUTHINFO PASS ****".into();
    }
    text
}

impl Driver {
    /// A request of the narrow path, with the descriptor that may come.
    fn ask(&self, req: &Request) -> Option<(Response, Option<File>)> {
        match self.monitor.service_with_fds(&req.encode()) {
            Ok((bytes, fds)) => match Response::decode(&bytes) {
                Ok(r) => Some((r, fds.into_iter().next().map(File::from))),
                Err(_) => {
                    log::error!("monitor: malformed answer");
                    None
                }
            },
            Err(e) => {
                log::error!("monitor: {e}");
                None
            }
        }
    }

    fn tell(&self, req: &Request) -> bool {
        match self.monitor.tell(&req.encode()) {
            Ok(()) => true,
            Err(e) => {
                log::error!("monitor: {e}");
                false
            }
        }
    }

    fn rights(&self) -> Option<Rights> {
        match self.ask(&Request::Rights)? {
            (Response::Rights { peer, read, post }, _) => Some(Rights { peer, read, post }),
            _ => None,
        }
    }

    fn reply(&mut self, bytes: &[u8]) {
        self.d.reply(bytes);
    }

    fn unavailable(&mut self) -> Flow {
        self.reply(b"403 Internal fault; try again later\r\n");
        Flow::Continue
    }

    fn perform(&mut self, action: Action) -> Flow {
        match action {
            Action::Reply(r) => {
                self.reply(&r);
                Flow::Continue
            }
            Action::Close(r) => {
                self.reply(&r);
                Flow::Close
            }
            Action::StartTls(r) => {
                self.reply(&r);
                Flow::StartTls
            }
            Action::Authenticate { user, pass } => {
                let _ = self.d.flush();
                let verdict = self.monitor.password(&user, &pass);
                let result = match verdict {
                    Verdict::Granted(name) => Ok(Some(name)),
                    Verdict::Denied => {
                        log::info!(
                            "{}: AUTHINFO failed for {}",
                            self.client,
                            crate::auth::printable(&user)
                        );
                        Ok(None)
                    }
                    Verdict::Unavailable => Err(()),
                };
                let a = self.state.auth_result(result);
                if let Some(u) = self.state.user() {
                    log::info!("{}: authenticated as {u}", self.client);
                    if let Some(r) = self.rights() {
                        self.state.set_rights(r);
                    }
                }
                self.perform(a)
            }
            Action::SelectGroup { name, list } => self.select_group(&name, list),
            Action::ListNumbers(g, range) => {
                self.reply(&state::listing_line(&g));
                self.send_numbers(range);
                Flow::Continue
            }
            Action::Article(part, at) => self.article(part, at),
            Action::Over(at, range) => self.over(at, range),
            Action::Hdr {
                field,
                at,
                range,
                xhdr,
            } => self.hdr(&field, at, range, xhdr),
            Action::List(kind) => self.list(kind),
            Action::NewGroups(since) => self.new_groups(since),
            Action::NewNews(w, since) => self.new_news(&w, since),
            Action::Step(forward, _group, from) => {
                let found = self.step(forward, from);
                let a = self.state.step_result(forward, found);
                self.perform(a)
            }
            Action::Date => {
                self.reply(&State::date_reply(now()));
                Flow::Continue
            }
            Action::Want(kind, id) => {
                let want = match self.ask(&Request::Check(id.clone())) {
                    Some((Response::Want(w), _)) => w,
                    _ => Want::Later,
                };
                let a = self.state.want_result(kind, &id, want);
                self.perform(a)
            }
            Action::Receive {
                kind,
                id,
                prompt,
                permitted,
            } => self.receive(kind, id, prompt, permitted),
        }
    }

    // ---- reading ----

    fn select_group(&mut self, name: &str, list: Option<Option<Range>>) -> Flow {
        let (found, fd) = match self.ask(&Request::Group(name.to_string())) {
            Some((
                Response::Group {
                    low, high, count, ..
                },
                fd,
            )) => (
                Some(Group {
                    name: name.to_string(),
                    low,
                    high,
                    count,
                }),
                fd,
            ),
            Some((Response::NoSuchGroup, _)) => (None, None),
            Some((Response::NotPermitted, _)) => {
                self.reply(b"480 Authentication required\r\n");
                return Flow::Continue;
            }
            _ => return self.unavailable(),
        };
        if found.is_some() {
            self.overview = fd;
        }
        let ok = found.is_some();
        let a = self.state.group_result(name, found, list.is_some());
        let flow = self.perform(a);
        if let (true, Some(range)) = (ok, list) {
            self.send_numbers(range.unwrap_or(Range { low: 0, high: None }));
        }
        flow
    }

    /// The numbers of the selected group in `range`, one per line, and
    /// the end of the list.
    fn send_numbers(&mut self, range: Range) {
        let mut out = Vec::new();
        if let Some(f) = &self.overview {
            if let Err(e) = overview::for_range(f, range, |n, _| {
                out.extend_from_slice(format!("{n}\r\n").as_bytes());
                true
            }) {
                log::error!("overview: {e}");
            }
        }
        out.extend_from_slice(b".\r\n");
        self.reply(&out);
    }

    fn step(&mut self, forward: bool, from: u64) -> Option<(u64, String)> {
        let f = self.overview.as_ref()?;
        let n = if forward {
            overview::next(f, from).ok()??
        } else {
            overview::previous(f, from).ok()??
        };
        let line = overview::line_of(f, n).ok()??;
        let id = overview::field(&line, 4)?;
        Some((n, String::from_utf8_lossy(id).into_owned()))
    }

    /// The article's file for a locator: the file and, by message-id,
    /// where it is.
    fn open_article(&mut self, at: &Locator) -> Result<Option<(File, String, u64)>, ()> {
        let req = match at {
            Locator::Number(g, n) => Request::Article(g.clone(), *n),
            Locator::Id(id) => Request::ArticleById(id.clone()),
        };
        match self.ask(&req) {
            Some((Response::File, Some(f))) => match at {
                Locator::Number(g, n) => Ok(Some((f, g.clone(), *n))),
                Locator::Id(_) => Ok(None),
            },
            Some((Response::Found(g, n), Some(f))) => Ok(Some((f, g, n))),
            Some((Response::NoFile | Response::NoSuchGroup, _)) => Ok(None),
            Some((Response::NotPermitted, _)) => Ok(None),
            _ => Err(()),
        }
    }

    fn article(&mut self, part: Part, at: Locator) -> Flow {
        let opened = match self.open_article(&at) {
            Ok(o) => o,
            Err(()) => return self.unavailable(),
        };
        let Some((mut file, _, _)) = opened else {
            let status = self.state.article_result(part, &at, None);
            self.reply(&status);
            return Flow::Continue;
        };
        // The first block: the header is in it (or in the next ones).
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        let header_end = loop {
            if let Some(p) = find(&buf[..got], b"\r\n\r\n") {
                break Some(p + 2);
            }
            if got == buf.len() {
                if buf.len() >= 1 << 20 {
                    break None;
                }
                buf.resize(buf.len() * 2, 0);
            }
            match file.read(&mut buf[got..]) {
                Ok(0) => break None,
                Ok(n) => got += n,
                Err(e) => {
                    log::error!("reading an article: {e}");
                    return self.unavailable();
                }
            }
        };
        let head_len = header_end.unwrap_or(got);
        let id = match &at {
            Locator::Id(id) => id.clone(),
            Locator::Number(..) => {
                header_value(&buf[..head_len], "Message-ID").unwrap_or_else(|| "<0>".to_string())
            }
        };
        let status = self.state.article_result(part, &at, Some(&id));
        let mut out = self.d.take_output();
        out.extend_from_slice(&status);
        let sent = match part {
            Part::Stat => {
                self.reply(&out);
                return Flow::Continue;
            }
            Part::Head => {
                // The header's lines with their CRLFs, then the end.
                out.extend_from_slice(&buf[..head_len]);
                if header_end.is_some() {
                    out.extend_from_slice(b".\r\n");
                }
                self.d.conn.send(&out)
            }
            Part::Article | Part::Body => {
                let from = if part == Part::Body {
                    // Past the empty line.
                    header_end.map_or(got, |h| h + 2)
                } else {
                    0
                };
                out.extend_from_slice(&buf[from..got]);
                self.send_rest(out, &mut file, &mut buf)
            }
        };
        if let Err(e) = sent {
            log::info!("{}: write failed: {e}", self.client);
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Send `out`, then the rest of `file` (already in wire form, ending
    /// with ".\r\n"), in large writes.
    fn send_rest(&mut self, mut out: Vec<u8>, file: &mut File, buf: &mut [u8]) -> io::Result<()> {
        loop {
            if out.len() >= 64 * 1024 {
                self.d.conn.stream_mut().write_all(&out)?;
                out.clear();
            }
            let n = file.read(buf)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        if !out.ends_with(b".\r\n") {
            // A file cut short (it should not be): end the block anyway.
            if !out.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
        }
        self.d.conn.send(&out)
    }

    /// The overview lines of `range` in the selected group, or of one
    /// article by message-id (its number shown as 0).
    fn overview_lines(&mut self, at: &Locator, range: Range) -> Result<Vec<Vec<u8>>, ()> {
        match at {
            Locator::Number(..) => {
                let mut lines = Vec::new();
                if let Some(f) = &self.overview {
                    overview::for_range(f, range, |_, l| {
                        lines.push(l.to_vec());
                        true
                    })
                    .map_err(|e| log::error!("overview: {e}"))?;
                }
                Ok(lines)
            }
            Locator::Id(_) => {
                let Some((_, g, n)) = self.open_article(at)? else {
                    return Ok(Vec::new());
                };
                let f = match self.ask(&Request::Group(g)) {
                    Some((Response::Group { .. }, Some(f))) => f,
                    _ => return Ok(Vec::new()),
                };
                Ok(match overview::line_of(&f, n) {
                    Ok(Some(l)) => {
                        let tab = l.iter().position(|&b| b == b'\t').unwrap_or(0);
                        vec![[b"0".as_slice(), &l[tab..]].concat()]
                    }
                    _ => Vec::new(),
                })
            }
        }
    }

    fn over(&mut self, at: Locator, range: Range) -> Flow {
        let lines = match self.overview_lines(&at, range) {
            Ok(l) => l,
            Err(()) => return self.unavailable(),
        };
        if lines.is_empty() {
            self.reply(match at {
                Locator::Id(_) => b"430 No article with that message-id\r\n",
                Locator::Number(..) => b"423 No articles in that range\r\n",
            });
            return Flow::Continue;
        }
        let mut out = self.d.take_output();
        out.extend_from_slice(b"224 Overview information follows\r\n");
        for l in lines {
            out.extend_from_slice(&l);
            if out.len() >= 64 * 1024 {
                if self.d.conn.stream_mut().write_all(&out).is_err() {
                    return Flow::Close;
                }
                out.clear();
            }
        }
        out.extend_from_slice(b".\r\n");
        if self.d.conn.send(&out).is_err() {
            return Flow::Close;
        }
        Flow::Continue
    }

    fn hdr(&mut self, field: &str, at: Locator, range: Range, xhdr: bool) -> Flow {
        let index = overview_index(field);
        let mut values: Vec<(String, String)> = Vec::new();
        let by_id = matches!(at, Locator::Id(_));
        let label = |n: u64| match &at {
            Locator::Id(id) if xhdr => id.clone(),
            Locator::Id(_) => "0".to_string(),
            Locator::Number(..) => n.to_string(),
        };
        match index {
            Some(i) => {
                let lines = match self.overview_lines(&at, range) {
                    Ok(l) => l,
                    Err(()) => return self.unavailable(),
                };
                for l in lines {
                    let n = overview::number_of(&l).unwrap_or(0);
                    let v = overview::field(&l, i).unwrap_or_default();
                    values.push((label(n), String::from_utf8_lossy(v).into_owned()));
                }
            }
            None => {
                let numbers: Vec<u64> = match &at {
                    Locator::Id(_) => vec![0],
                    Locator::Number(..) => match &self.overview {
                        Some(f) => overview::numbers(f, range).unwrap_or_default(),
                        None => Vec::new(),
                    },
                };
                let group = self
                    .state
                    .group()
                    .map(|g| g.name.clone())
                    .unwrap_or_default();
                for n in numbers {
                    let loc = match &at {
                        Locator::Id(id) => Locator::Id(id.clone()),
                        Locator::Number(..) => Locator::Number(group.clone(), n),
                    };
                    let Ok(Some((mut f, _, _))) = self.open_article(&loc) else {
                        continue;
                    };
                    let mut head = vec![0u8; 64 * 1024];
                    let got = read_up_to(&mut f, &mut head);
                    let end = find(&head[..got], b"\r\n\r\n").map_or(got, |p| p + 2);
                    let v = header_value(&head[..end], field).unwrap_or_default();
                    values.push((label(n), v));
                }
            }
        }
        if values.is_empty() {
            self.reply(if by_id {
                b"430 No article with that message-id\r\n"
            } else {
                b"423 No articles in that range\r\n"
            });
            return Flow::Continue;
        }
        let mut out = if xhdr {
            b"221 Header follows\r\n".to_vec()
        } else {
            b"225 Headers follow\r\n".to_vec()
        };
        for (n, v) in values {
            out.extend_from_slice(format!("{n} {}\r\n", overview::clean(&v)).as_bytes());
        }
        out.extend_from_slice(b".\r\n");
        self.reply(&out);
        Flow::Continue
    }

    fn list_file(&mut self, which: ListFile) -> Result<Option<File>, ()> {
        match self.ask(&Request::List(which)) {
            Some((Response::File, Some(f))) => Ok(Some(f)),
            Some((Response::NoFile, _)) => Ok(None),
            _ => Err(()),
        }
    }

    fn list(&mut self, kind: ListKind) -> Flow {
        let (which, status, w) = match kind {
            ListKind::Active(w) => (
                ListFile::Active,
                "215 Newsgroups in form \"group high low status\"",
                w,
            ),
            ListKind::ActiveTimes(w) => (
                ListFile::ActiveTimes,
                "215 Group creations in form \"name time who\"",
                w,
            ),
            ListKind::Newsgroups(w) => (
                ListFile::Newsgroups,
                "215 Descriptions in form \"group description\"",
                w,
            ),
            ListKind::DistribPats => (
                ListFile::DistribPats,
                "215 Default distributions in form \"weight:group-pattern:distribution\"",
                None,
            ),
            ListKind::OverviewFmt | ListKind::Headers => return Flow::Continue,
        };
        let file = match self.list_file(which) {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.reply(b"503 Not maintained here\r\n");
                return Flow::Continue;
            }
            Err(()) => return self.unavailable(),
        };
        let mut text = String::new();
        let _ = (&file).take(256 << 20).read_to_string(&mut text);
        let mut out = format!("{status}\r\n").into_bytes();
        for l in text.lines() {
            let l = l.trim_end_matches('\r');
            if l.is_empty() || l.starts_with('#') && which == ListFile::DistribPats {
                continue;
            }
            let name = l.split([' ', '\t']).next().unwrap_or("");
            if w.as_ref().is_some_and(|w| !w.matches(name)) {
                continue;
            }
            if l.starts_with('.') {
                out.push(b'.');
            }
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.reply(&out);
        Flow::Continue
    }

    fn new_groups(&mut self, since: i64) -> Flow {
        let (times, active) = match (
            self.list_file(ListFile::ActiveTimes),
            self.list_file(ListFile::Active),
        ) {
            (Ok(t), Ok(a)) => (t, a),
            _ => return self.unavailable(),
        };
        let read = |f: Option<File>| {
            let mut s = String::new();
            if let Some(f) = f {
                let _ = (&f).take(256 << 20).read_to_string(&mut s);
            }
            s
        };
        let times = read(times);
        let active = read(active);
        let new: Vec<&str> = times
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next()?;
                let t: i64 = w.next()?.parse().ok()?;
                (t >= since).then_some(name)
            })
            .collect();
        let mut out = b"231 List of new newsgroups follows\r\n".to_vec();
        for l in active.lines() {
            if let Some(e) = super::spool::active::parse_line(l) {
                if new.contains(&e.name.as_str()) {
                    out.extend_from_slice(
                        format!("{} {} {} {}\r\n", e.name, e.high, e.low, e.flag.as_str())
                            .as_bytes(),
                    );
                }
            }
        }
        out.extend_from_slice(b".\r\n");
        self.reply(&out);
        Flow::Continue
    }

    fn new_news(&mut self, w: &Wildmat, since: i64) -> Flow {
        let f = match self.list_file(ListFile::History) {
            Ok(f) => f,
            Err(()) => return self.unavailable(),
        };
        let mut out = b"230 List of new articles follows\r\n".to_vec();
        if let Some(f) = f {
            let r = io::BufReader::with_capacity(64 * 1024, f);
            for l in io::BufRead::lines(r).map_while(Result::ok) {
                let Some(h) = history::parse_line(&l) else {
                    continue;
                };
                if (h.arrived as i64) >= since && h.xref.iter().any(|(g, _)| w.matches(g)) {
                    out.extend_from_slice(h.message_id.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        out.extend_from_slice(b".\r\n");
        self.reply(&out);
        Flow::Continue
    }

    // ---- articles in ----

    /// Read a dot-terminated block as canonical text, at most `limit`
    /// bytes kept (the rest is read and dropped).
    fn read_block(&mut self, limit: u64) -> Block {
        let mut text = Vec::with_capacity(8 * 1024);
        let mut un = crate::wire::Unstuffer::new();
        let mut problem: Option<String> = None;
        let mut bare_lf = false;
        loop {
            let line = match self.d.conn.read_line_ref(ARTICLE_LINE_MAX) {
                Ok(l) => l,
                Err(e) => {
                    if is_timeout(&e) {
                        self.d.reply(&State::timeout_reply());
                    }
                    log::info!("{}: lost during an article: {e}", self.client);
                    return Block::Lost;
                }
            };
            match line {
                LineRef::Complete(l, ending) => match un.line(l, ending) {
                    crate::wire::DotLine::End => break,
                    crate::wire::DotLine::Text(t) => {
                        if problem.is_some() {
                            continue;
                        }
                        if ending == Ending::Lf {
                            bare_lf = true;
                        }
                        if (text.len() + t.len() + 2) as u64 > limit {
                            problem = Some(format!("article too large (at most {limit} bytes)"));
                            text = Vec::new();
                            continue;
                        }
                        text.extend_from_slice(t);
                        text.extend_from_slice(b"\r\n");
                    }
                },
                LineRef::TooLong => {
                    if problem.is_none() {
                        problem = Some("line too long in article".into());
                        text = Vec::new();
                    }
                }
                LineRef::Eof => {
                    log::info!("{}: closed the connection in an article", self.client);
                    return Block::Lost;
                }
            }
        }
        if bare_lf {
            log::info!("{}: bare LF line ends in an article made CRLF", self.client);
        }
        Block::Done(match problem {
            Some(p) => Err(p),
            None => Ok(text),
        })
    }

    fn receive(
        &mut self,
        kind: Kind,
        id: String,
        prompt: Option<Vec<u8>>,
        permitted: bool,
    ) -> Flow {
        if let Some(p) = prompt {
            self.reply(&p);
            if self.d.flush().is_err() {
                return Flow::Close;
            }
        }
        // A little slack: the spool counts the header it adds too.
        let limit = self.config.max_article_size + 4096;
        let text = match self.read_block(limit) {
            Block::Lost => return Flow::Close,
            Block::Done(t) => t,
        };
        let refusal = match (&text, permitted) {
            (_, false) => Some("transfer not permitted".to_string()),
            (Err(why), _) => Some(why.clone()),
            (Ok(_), true) => None,
        };
        if let Some(why) = refusal {
            log::info!("{}: {} {id}: refused: {why}", self.client, kind_name(kind));
            let r = self.state.receive_result(kind, &id, &Outcome::Refused(why));
            if kind == Kind::Takethis {
                // In order with the articles of the batch before it.
                self.commit_batch();
            }
            self.reply(&r);
            return Flow::Continue;
        }
        let text = text.unwrap_or_default();
        let size = text.len();
        if !self.hand_over(kind, &id, text) {
            let r = self.state.receive_result(
                kind,
                &id,
                &Outcome::Failed("the spool is unavailable".into()),
            );
            self.reply(&r);
            return Flow::Continue;
        }
        self.batch.push((kind, id));
        self.batch_bytes += size;
        let full = self.batch.len() >= BATCH_ARTICLES || self.batch_bytes >= BATCH_BYTES;
        if kind != Kind::Takethis || full || !self.d.input_waiting() {
            self.commit_batch();
        }
        Flow::Continue
    }

    /// Hand an article to the monitor: with the next ones in one message,
    /// or in pieces when it is large.
    fn hand_over(&mut self, kind: Kind, id: &str, text: Vec<u8>) -> bool {
        let piece = Piece {
            kind,
            id: id.to_string(),
            text,
        };
        if piece.size() <= request::MAX_PIECES {
            let ok = self.pieces_size + piece.size() <= request::MAX_PIECES || self.send_pieces();
            self.pieces_size += piece.size();
            self.pieces.push(piece);
            return ok;
        }
        let mut ok = self.send_pieces() && self.tell(&Request::Begin(kind, piece.id));
        for chunk in piece.text.chunks(request::MAX_CHUNK) {
            ok &= self.tell(&Request::Data(chunk.to_vec()));
        }
        ok & self.tell(&Request::End(false))
    }

    /// Tell the articles waiting to be handed over.
    fn send_pieces(&mut self) -> bool {
        if self.pieces.is_empty() {
            return true;
        }
        self.pieces_size = 0;
        let pieces = std::mem::take(&mut self.pieces);
        self.tell(&Request::Offers(pieces))
    }

    /// Store what was handed over and reply for each, in order.
    fn commit_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.pieces_size = 0;
        let last = std::mem::take(&mut self.pieces);
        let outcomes = match self.ask(&Request::Commit(last)) {
            Some((Response::Outcomes(o), _)) if o.len() == batch.len() => o,
            _ => vec![Outcome::Failed("the spool is unavailable".into()); batch.len()],
        };
        let streamed = batch.len() > 1;
        if streamed {
            let taken = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Accepted(_)))
                .count();
            let dup = outcomes
                .iter()
                .filter(|o| **o == Outcome::Duplicate)
                .count();
            log::info!(
                "{}: {} articles: {taken} accepted, {dup} duplicates, {} refused",
                self.client,
                batch.len(),
                batch.len() - taken - dup
            );
        }
        for ((kind, id), o) in batch.iter().zip(outcomes) {
            match &o {
                Outcome::Accepted(mid) if streamed => {
                    log::debug!("{}: {} {mid} accepted", self.client, kind_name(*kind))
                }
                Outcome::Accepted(mid) => {
                    log::info!("{}: {} {mid} accepted", self.client, kind_name(*kind))
                }
                Outcome::Mailed(to) => {
                    log::info!("{}: posting mailed to the moderator {to}", self.client)
                }
                Outcome::Duplicate => {}
                Outcome::Refused(why) | Outcome::Failed(why) => log::info!(
                    "{}: {} {id}: {}",
                    self.client,
                    kind_name(*kind),
                    crate::auth::printable(why)
                ),
            }
            let r = self.state.receive_result(*kind, id, &o);
            self.reply(&r);
        }
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Post => "POST",
        Kind::Ihave => "IHAVE",
        Kind::Takethis => "TAKETHIS",
    }
}

/// Where HDR finds a field in the overview (None: in the article).
fn overview_index(field: &str) -> Option<usize> {
    let f = field.to_ascii_lowercase();
    Some(match f.as_str() {
        "subject" => 1,
        "from" => 2,
        "date" => 3,
        "message-id" => 4,
        "references" => 5,
        ":bytes" | "bytes" => 6,
        ":lines" | "lines" => 7,
        "xref" => 8,
        _ => return None,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// A field's value from a stored header (wire form), unfolded.
fn header_value(head: &[u8], name: &str) -> Option<String> {
    // Stored header lines are dot-stuffed like the rest.
    let mut text = Vec::with_capacity(head.len());
    for l in head.split_inclusive(|&b| b == b'\n') {
        text.extend_from_slice(l.strip_prefix(b".").unwrap_or(l));
    }
    let a = super::article::parse(&text).ok()?;
    a.get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(masked(b"AUTHINFO PASS secret"), "AUTHINFO PASS ****");
        assert_eq!(masked(b"authinfo  pass x y"), "AUTHINFO PASS ****");
        assert_eq!(masked(b"AUTHINFO USER demo"), "AUTHINFO USER demo");
        assert_eq!(masked(b"GROUP a\r"), "GROUP a?");
    }

    #[test]
    fn header_values() {
        let head = b"Subject: a\r\n b\r\nMessage-ID: <1@x>\r\n\r\n";
        assert_eq!(header_value(head, "subject").as_deref(), Some("a b"));
        assert_eq!(header_value(head, "message-id").as_deref(), Some("<1@x>"));
        assert_eq!(header_value(head, "nope"), None);
        assert_eq!(overview_index("SUBJECT"), Some(1));
        assert_eq!(overview_index(":lines"), Some(7));
        assert_eq!(overview_index("Organization"), None);
    }
}
