//! nntpd's root side: the narrow privileged path the unprivileged dialogue
//! uses (see `request`). It decides this client's rights itself (the
//! peer's address against peers_file, the address against open_networks,
//! the account the monitor proved), opens spool files for reading only
//! after checking the group name and that the group exists, and takes
//! articles into the spool as the spool's owner, checking each again
//! (`inject`) whatever the dialogue said of it.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::command::{valid_group_name, valid_message_id};
use super::inject::Origin;
use super::request::{self, Kind, ListFile, Outcome, Request, Response, Want};
use super::spool::active::ActiveFile;
use super::spool::history::History;
use super::spool::store::{self, Offer, Store};
use super::spool::Spool;
use super::state::Rights;
use super::Config;
use crate::auth::{self, Account};
use crate::runtime::session::Privileged;

/// Articles waiting for `Commit`, at most this many bytes in all.
const MAX_BATCH_BYTES: usize = 64 << 20;
/// Peers' addresses are looked up again after this long.
const PEER_CACHE: Duration = Duration::from_secs(300);

/// Each peer's name and addresses.
type PeerAddrs = Vec<(String, Vec<IpAddr>)>;

thread_local! {
    /// The peers' addresses (and when they were looked up), kept across
    /// the monitor's connections.
    static PEER_ADDRS: RefCell<Option<(Instant, PeerAddrs)>> = const { RefCell::new(None) };
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The peer a client at `ip` is, by the addresses of peers_file's hosts.
fn peer_at(cfg: &Config, ip: IpAddr) -> Option<String> {
    if cfg.peers.is_empty() {
        return None;
    }
    PEER_ADDRS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let stale = cache
            .as_ref()
            .is_none_or(|(at, list)| at.elapsed() > PEER_CACHE || list.len() != cfg.peers.len());
        if stale {
            let list = cfg
                .peers
                .iter()
                .map(|p| {
                    let ips = (p.host.as_str(), p.port)
                        .to_socket_addrs()
                        .map(|a| a.map(|s| unmapped(s.ip())).collect())
                        .unwrap_or_else(|e| {
                            log::warn!("peer {}: cannot resolve {}: {e}", p.name, p.host);
                            Vec::new()
                        });
                    (p.name.clone(), ips)
                })
                .collect();
            *cache = Some((Instant::now(), list));
        }
        let (_, list) = cache.as_ref()?;
        list.iter()
            .find(|(_, ips)| ips.contains(&ip))
            .map(|(n, _)| n.clone())
    })
}

/// The account that owns the spool, as writers act (None: we are that
/// account already, or it is root).
fn owner_account(spool: &Spool) -> io::Result<Option<Account>> {
    if !auth::running_as_root() {
        return Ok(None);
    }
    let (uid, gid) = spool.owner()?;
    if uid == 0 {
        return Ok(None);
    }
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let name = user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| uid.to_string());
    let groups = match &user {
        Some(u) => {
            let c = std::ffi::CString::new(u.name.clone()).unwrap_or_default();
            nix::unistd::getgrouplist(&c, nix::unistd::Gid::from_raw(gid))
                .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                .unwrap_or_else(|_| vec![gid])
        }
        None => vec![gid],
    };
    Ok(Some(Account {
        name,
        uid,
        gid,
        home: spool.dir.clone(),
        shell: "/bin/false".into(),
        virtual_user: true,
        groups,
    }))
}

/// Run `f` as the spool's owner.
fn as_owner<T>(owner: &Option<Account>, f: impl FnOnce() -> T) -> io::Result<T> {
    let _guard = match owner {
        Some(a) => Some(auth::act_as(a)?),
        None => None,
    };
    Ok(f())
}

/// An article being told in pieces.
struct Building {
    kind: Kind,
    id: String,
    text: Vec<u8>,
    too_big: bool,
}

/// The monitor's state for one connection.
struct Path {
    cfg: Config,
    spool: Spool,
    active: ActiveFile,
    history: Option<History>,
    store: Option<Store>,
    owner: Option<Option<Account>>,
    /// The rights, and the account they were worked out for.
    rights: Option<(Option<String>, Rights)>,
    /// Each article told, or why it was dropped on the way.
    batch: Vec<(Kind, Result<Offer, String>)>,
    batch_bytes: usize,
    building: Option<Building>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Open a spool file for the dialogue: read-only, never through a link.
fn open_read(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl Path {
    fn new(cfg: Config) -> Path {
        let spool = Spool::new(&cfg.spool_dir);
        Path {
            active: ActiveFile::new(&spool.active()),
            spool,
            cfg,
            history: None,
            store: None,
            owner: None,
            rights: None,
            batch: Vec::new(),
            batch_bytes: 0,
            building: None,
        }
    }

    fn rights(&mut self, p: &Privileged) -> Rights {
        let user = p.authenticated.map(str::to_string);
        if let Some((u, r)) = &self.rights {
            if *u == user {
                return r.clone();
            }
        }
        let ip = unmapped(p.peer.ip());
        let peer = peer_at(&self.cfg, ip);
        let open = self.cfg.open_to(ip);
        let r = Rights {
            read: open || user.is_some() || peer.is_some(),
            post: (self.cfg.posting && open)
                || user.as_deref().is_some_and(|u| self.cfg.may_post_as(u)),
            peer,
        };
        self.rights = Some((user, r.clone()));
        r
    }

    fn history(&mut self) -> io::Result<&mut History> {
        if self.history.is_none() {
            self.history = Some(History::open(&self.spool.dir)?);
        }
        Ok(self.history.as_mut().expect("just opened"))
    }

    fn owner(&mut self) -> io::Result<Option<Account>> {
        if self.owner.is_none() {
            self.owner = Some(owner_account(&self.spool)?);
        }
        Ok(self.owner.clone().flatten())
    }

    fn store(&mut self) -> io::Result<&mut Store> {
        if self.store.is_none() {
            let owner = self.owner()?;
            let (spool, cfg) = (self.spool.clone(), self.cfg.clone());
            self.store = Some(as_owner(&owner, || Store::open(spool, cfg))??);
        }
        Ok(self.store.as_mut().expect("just opened"))
    }

    /// A group the dialogue may read: a valid name in the active file.
    fn group_exists(&mut self, g: &str) -> io::Result<bool> {
        Ok(valid_group_name(g) && self.active.get(g)?.is_some())
    }

    fn read(&mut self, p: &mut Privileged, req: Request) -> io::Result<Response> {
        Ok(match req {
            Request::Group(g) => {
                if !valid_group_name(&g) {
                    return Ok(Response::NoSuchGroup);
                }
                let entry = {
                    let _lock = self.spool.lock(false)?;
                    self.active.get(&g)?
                };
                let Some(e) = entry else {
                    return Ok(Response::NoSuchGroup);
                };
                if let Ok(f) = open_read(&self.spool.overview(&g)) {
                    p.fds.push(OwnedFd::from(f));
                }
                Response::Group {
                    low: e.low,
                    high: e.high,
                    count: e.count(),
                    flag: e.flag.as_str().to_string(),
                }
            }
            Request::List(which) => {
                let path = match which {
                    ListFile::Active => self.spool.active(),
                    ListFile::ActiveTimes => self.spool.active_times(),
                    ListFile::Newsgroups => self.spool.newsgroups(),
                    ListFile::DistribPats => self.spool.distrib_pats(),
                    ListFile::History => self.spool.dir.join("history"),
                };
                match open_read(&path) {
                    Ok(f) => {
                        p.fds.push(OwnedFd::from(f));
                        Response::File
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Response::NoFile,
                    Err(e) => return Err(e),
                }
            }
            Request::Article(g, n) => {
                if !self.group_exists(&g)? {
                    return Ok(Response::NoSuchGroup);
                }
                match open_read(&self.spool.article(&g, n)) {
                    Ok(f) => {
                        p.fds.push(OwnedFd::from(f));
                        Response::File
                    }
                    Err(_) => Response::NoFile,
                }
            }
            Request::ArticleById(id) => {
                if !valid_message_id(&id) {
                    return Ok(Response::NoFile);
                }
                let Some(line) = self.history()?.lookup(&id)? else {
                    return Ok(Response::NoFile);
                };
                for (g, n) in line.xref {
                    if !self.group_exists(&g)? {
                        continue;
                    }
                    if let Ok(f) = open_read(&self.spool.article(&g, n)) {
                        p.fds.push(OwnedFd::from(f));
                        return Ok(Response::Found(g, n));
                    }
                }
                Response::NoFile
            }
            _ => Response::Unavailable("not a read".into()),
        })
    }

    /// Queue an article told by the dialogue, if this client may send it.
    fn offer(
        &mut self,
        p: &Privileged,
        kind: Kind,
        id: String,
        text: Vec<u8>,
    ) -> Result<(), String> {
        if self.batch.len() >= request::MAX_BATCH || self.batch_bytes + text.len() > MAX_BATCH_BYTES
        {
            return Err("too many articles before a commit".into());
        }
        let rights = self.rights(p);
        let origin = match kind {
            Kind::Post => Origin::Post {
                host: unmapped(p.peer.ip()).to_string(),
                user: p.authenticated.map(str::to_string),
            },
            Kind::Ihave | Kind::Takethis => Origin::Peer {
                name: rights.peer.clone().unwrap_or_default(),
                offered: id,
            },
        };
        self.batch_bytes += text.len();
        self.batch.push((kind, Ok(Offer { origin, text })));
        Ok(())
    }

    fn commit(&mut self, p: &Privileged) -> io::Result<Response> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let rights = self.rights(p);
        let mut allowed = Vec::new();
        let mut verdicts: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        for (kind, offer) in batch {
            let ok = match kind {
                Kind::Post => rights.post,
                Kind::Ihave | Kind::Takethis => rights.peer.is_some(),
            };
            match offer {
                Err(why) => verdicts.push(Some(Outcome::Refused(why))),
                Ok(_) if !ok => {
                    log::warn!(
                        "{}: an article this client may not send was refused",
                        p.peer
                    );
                    verdicts.push(Some(Outcome::Refused("not permitted".into())));
                }
                Ok(offer) => {
                    allowed.push(offer);
                    verdicts.push(None);
                }
            }
        }
        let owner = self.owner()?;
        let now = now();
        let (outcomes, fed) = {
            let store = self.store()?;
            let outcomes = as_owner(&owner, || {
                let o = store.store(allowed, now);
                match store.commit() {
                    Ok(()) => o,
                    Err(e) => {
                        log::error!("journal: {e}");
                        o.into_iter()
                            .map(|_| store::Outcome::Failed(format!("cannot sync: {e}")))
                            .collect()
                    }
                }
            })?;
            (outcomes, store.fed())
        };
        let mut outcomes = outcomes.into_iter();
        let mut out = Vec::with_capacity(verdicts.len());
        for v in verdicts {
            out.push(match v {
                Some(o) => o,
                None => match outcomes.next() {
                    Some(o) => self.outcome(o),
                    None => Outcome::Failed("lost".into()),
                },
            });
        }
        for peer in fed {
            let kick = self.spool.dir.join(super::feed::KICK);
            let _ = crate::queue::kick::send(&kick, &crate::queue::Kick::Entry(peer));
        }
        Ok(Response::Outcomes(out))
    }

    fn outcome(&mut self, o: store::Outcome) -> Outcome {
        match o {
            store::Outcome::Accepted { message_id, .. } => Outcome::Accepted(message_id),
            store::Outcome::Duplicate(_) => Outcome::Duplicate,
            store::Outcome::Refused(why) => Outcome::Refused(why),
            store::Outcome::Failed(why) => Outcome::Failed(why),
            store::Outcome::Moderate {
                group,
                message_id,
                mail,
            } => {
                let Some(to) = super::peers::moderator_for(&self.cfg.moderators, &group) else {
                    return Outcome::Refused(format!("no moderator known for {group}"));
                };
                let from = format!("news@{}", self.cfg.path_identity);
                match super::moderation::send(
                    &self.cfg.mail_relay,
                    &self.cfg.path_identity,
                    &from,
                    &to,
                    &mail,
                ) {
                    Ok(()) => {
                        log::info!("{message_id} for {group} mailed to the moderator {to}");
                        Outcome::Mailed(to)
                    }
                    Err(e) => {
                        log::error!("cannot mail {message_id} to the moderator {to}: {e}");
                        Outcome::Failed("cannot reach the moderator now".into())
                    }
                }
            }
        }
    }
}

/// Answer one request of the dialogue (the `TcpProtocol::privileged`
/// hook). A told request's answer is dropped; its failure ends the
/// session.
pub fn handle(p: &mut Privileged, body: &[u8]) -> Result<Vec<u8>, String> {
    let req = Request::decode(body).map_err(|_| "malformed request".to_string())?;
    if p.state.is_none() {
        let cfg = p.settings.daemon::<Config>().clone();
        *p.state = Some(Box::new(Path::new(cfg)));
    }
    let mut state = p.state.take().ok_or("no state")?;
    let result = match state.downcast_mut::<Path>() {
        Some(path) => answer(path, p, req),
        None => Err("no state".to_string()),
    };
    *p.state = Some(state);
    result
}

fn answer(path: &mut Path, p: &mut Privileged, req: Request) -> Result<Vec<u8>, String> {
    let told = |r: Result<(), String>| r.map(|()| Vec::new());
    let resp = match req {
        Request::Rights => {
            let r = path.rights(p);
            Response::Rights {
                peer: r.peer,
                read: r.read,
                post: r.post,
            }
        }
        Request::Group(_) | Request::List(_) | Request::Article(..) | Request::ArticleById(_) => {
            if !path.rights(p).read {
                Response::NotPermitted
            } else {
                match path.read(p, req) {
                    Ok(r) => r,
                    Err(e) => {
                        log::error!("spool {}: {e}", path.spool.dir.display());
                        Response::Unavailable(e.to_string())
                    }
                }
            }
        }
        Request::Check(id) => {
            if path.rights(p).peer.is_none() {
                Response::NotPermitted
            } else if !valid_message_id(&id) {
                Response::Want(Want::No)
            } else {
                match path.history().and_then(|h| h.lookup(&id)) {
                    Ok(Some(_)) => Response::Want(Want::No),
                    Ok(None) => Response::Want(Want::Yes),
                    Err(e) => {
                        log::error!("history: {e}");
                        Response::Want(Want::Later)
                    }
                }
            }
        }
        Request::Offers(pieces) => {
            for piece in pieces {
                path.offer(p, piece.kind, piece.id, piece.text)?;
            }
            return Ok(Vec::new());
        }
        Request::Begin(kind, id) => {
            path.building = Some(Building {
                kind,
                id,
                text: Vec::new(),
                too_big: false,
            });
            return Ok(Vec::new());
        }
        Request::Data(chunk) => {
            let limit = path.cfg.max_article_size as usize + 8192;
            if let Some(b) = path.building.as_mut() {
                if b.text.len() + chunk.len() > limit {
                    b.too_big = true;
                    b.text = Vec::new();
                } else if !b.too_big {
                    b.text.extend_from_slice(&chunk);
                }
            }
            return Ok(Vec::new());
        }
        Request::End(too_big) => {
            let Some(b) = path.building.take() else {
                return Err("End without Begin".into());
            };
            if b.too_big || too_big {
                if path.batch.len() >= request::MAX_BATCH {
                    return Err("too many articles before a commit".into());
                }
                let why = format!(
                    "article too large (at most {} bytes)",
                    path.cfg.max_article_size
                );
                path.batch.push((b.kind, Err(why)));
                return Ok(Vec::new());
            }
            return told(path.offer(p, b.kind, b.id, b.text));
        }
        Request::Commit(pieces) => {
            for piece in pieces {
                path.offer(p, piece.kind, piece.id, piece.text)?;
            }
            match path.commit(p) {
                Ok(r) => r,
                Err(e) => {
                    log::error!("spool {}: {e}", path.spool.dir.display());
                    Response::Unavailable(e.to_string())
                }
            }
        }
    };
    Ok(resp.encode())
}
