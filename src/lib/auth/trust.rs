//! Trust between hosts, the BSD way: /etc/hosts.equiv and ~/.rhosts decided
//! exactly as glibc's and BSD's ruserok(3) do, as a pure function over
//! injected file reads and name lookups (`World`), so that every rule is a
//! unit test. `system.rs`-side code (`SystemWorld`) does the real reads (the
//! .rhosts as its owner) and lookups for the monitor.
//!
//! The rules, in order:
//!
//! 1. hosts.equiv, never for root (uid 0): it must be a regular file owned
//!    by root, writable by nobody else, with one link;
//! 2. then ~/.rhosts, when `use_rhosts` (for root only with `root_rhosts`),
//!    read as the account: refused when it is not a regular file, a
//!    symbolic link, owned by another than the account or root, writable by
//!    group or others, or hard-linked;
//! 3. in each file, lines `host [user]`; blank lines and lines whose first
//!    non-blank character is `#` are skipped; the first decisive line wins:
//!    - host `+` any host, `+@group`/`-@group` the hosts of a netgroup
//!      (innetgr), `-host` a host refused, else the client's numeric
//!      address or a name that resolves to it;
//!    - user `+` any user, `+@group`/`-@group`, `-user`, else the name
//!      itself; no user field means the local account's own name;
//!    - a refused host, or a matching host with a refused user, ends that
//!      file with a refusal; a matching host and user allow.
//!
//! A refusal in hosts.equiv does not keep ~/.rhosts from allowing (ruserok
//! reads both); a name matches only by resolving to the client's address,
//! and netgroups are asked with the client's forward-confirmed name, so a
//! client's own reverse DNS never makes it trusted.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Largest trust file read (a longer one is refused whole, never cut).
pub const MAX_TRUST_FILE: usize = 256 * 1024;

/// What the daemon's configuration says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub hosts_equiv: PathBuf,
    pub use_rhosts: bool,
    pub root_rhosts: bool,
}

/// The client as the monitor knows it.
#[derive(Clone, Debug)]
pub struct Client<'a> {
    /// The address the connection came from (IPv4-mapped IPv6 already
    /// made IPv4).
    pub addr: IpAddr,
    /// Its forward-confirmed name, if it has one.
    pub name: Option<&'a str>,
    /// The user name the client says it is on its host.
    pub user: &'a str,
}

/// The local account asked for.
#[derive(Clone, Debug)]
pub struct Local<'a> {
    pub user: &'a str,
    pub uid: u32,
    pub home: &'a Path,
}

/// What a file is, as lstat(2) and then fstat(2) of the opened file say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Symlink,
    Other,
}

/// A trust file as read (or found missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustFile {
    Missing,
    /// It could not be looked at or read (the reason).
    Unreadable(String),
    Found {
        kind: FileKind,
        uid: u32,
        mode: u32,
        nlink: u64,
        /// The content of a regular file (None: more than MAX_TRUST_FILE).
        content: Option<Vec<u8>>,
    },
}

/// The outside world the decision needs: file reads and name lookups.
pub trait World {
    /// Look at and read a trust file: hosts.equiv as root (`as_uid` None),
    /// a .rhosts with the identity of its account (`as_uid`), never
    /// following a symbolic link.
    fn read(&mut self, path: &Path, as_uid: Option<u32>) -> TrustFile;
    /// The addresses a host name resolves to.
    fn addresses(&mut self, host: &str) -> Vec<IpAddr>;
    /// innetgr(3): whether (host, user) is in the netgroup.
    fn innetgr(&mut self, group: &str, host: Option<&str>, user: Option<&str>) -> bool;
}

/// The verdict, with what decided it (for the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        file: PathBuf,
        line: usize,
    },
    /// Why not, file by file.
    Denied(String),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Decision::Allowed { file, line } => {
                write!(f, "allowed by {} line {line}", file.display())
            }
            Decision::Denied(why) => write!(f, "denied: {why}"),
        }
    }
}

/// How one file's lines ended.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    Allow(usize),
    /// A negative line refused (its number).
    Refuse(usize),
    NoMatch,
}

/// Decide whether `client` may act as `local` without a password.
pub fn decide(policy: &Policy, client: &Client, local: &Local, world: &mut dyn World) -> Decision {
    if client.user.starts_with('-') || local.user.starts_with('-') {
        return Decision::Denied("a user name starts with '-'".into());
    }
    let superuser = local.uid == 0;
    let mut why = Vec::new();
    if superuser {
        why.push(format!("{}: never for root", policy.hosts_equiv.display()));
    } else {
        match check_file(&policy.hosts_equiv, None, 0, client, local, world) {
            Ok(Scan::Allow(line)) => {
                return Decision::Allowed {
                    file: policy.hosts_equiv.clone(),
                    line,
                }
            }
            Ok(scan) => why.push(describe(&policy.hosts_equiv, scan)),
            Err(e) => why.push(format!("{}: {e}", policy.hosts_equiv.display())),
        }
    }
    let rhosts = local.home.join(".rhosts");
    if superuser && !policy.root_rhosts {
        why.push(format!("{}: root_rhosts is off", rhosts.display()));
    } else if !policy.use_rhosts {
        why.push(format!("{}: use_rhosts is off", rhosts.display()));
    } else {
        match check_file(&rhosts, Some(local.uid), local.uid, client, local, world) {
            Ok(Scan::Allow(line)) => {
                return Decision::Allowed { file: rhosts, line };
            }
            Ok(scan) => why.push(describe(&rhosts, scan)),
            Err(e) => why.push(format!("{}: {e}", rhosts.display())),
        }
    }
    Decision::Denied(why.join("; "))
}

fn describe(path: &Path, scan: Scan) -> String {
    match scan {
        Scan::Refuse(line) => format!("{} line {line} refuses", path.display()),
        Scan::NoMatch | Scan::Allow(_) => format!("{}: no line matches", path.display()),
    }
}

/// Read one file and check it ruserok's way (iruserfopen): regular, not a
/// link, owned by root or `owner`, not writable by group or others, one link.
fn check_file(
    path: &Path,
    as_uid: Option<u32>,
    owner: u32,
    client: &Client,
    local: &Local,
    world: &mut dyn World,
) -> Result<Scan, String> {
    let (kind, uid, mode, nlink, content) = match world.read(path, as_uid) {
        TrustFile::Missing => return Err("missing".into()),
        TrustFile::Unreadable(why) => return Err(why),
        TrustFile::Found {
            kind,
            uid,
            mode,
            nlink,
            content,
        } => (kind, uid, mode, nlink, content),
    };
    match kind {
        FileKind::Symlink => return Err("a symbolic link".into()),
        FileKind::Other => return Err("not a regular file".into()),
        FileKind::Regular => {}
    }
    if uid != 0 && uid != owner {
        return Err(format!("owned by uid {uid}, not by the account or root"));
    }
    if mode & 0o022 != 0 {
        return Err("writable by group or others".into());
    }
    if nlink > 1 {
        return Err("hard-linked".into());
    }
    let Some(content) = content else {
        return Err(format!("larger than {MAX_TRUST_FILE} bytes"));
    };
    Ok(scan(&content, client, local, world))
}

fn is_space(b: u8) -> bool {
    // C's isspace in the C locale.
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// One line's host and user fields, as glibc's __validuser2_sa cuts them:
/// the host runs from the first byte (a line that starts with a blank has
/// an empty host, which matches nothing) to the first blank, lowercased;
/// the user follows a space or tab, else it is empty.
fn fields(line: &[u8]) -> (String, String) {
    // C strings end at a NUL.
    let line = match line.iter().position(|&b| b == 0) {
        Some(n) => &line[..n],
        None => line,
    };
    let host_end = line.iter().position(|&b| is_space(b)).unwrap_or(line.len());
    let host: Vec<u8> = line[..host_end]
        .iter()
        .map(|b| b.to_ascii_lowercase())
        .collect();
    let mut user: &[u8] = &[];
    if matches!(line.get(host_end), Some(b' ' | b'\t')) {
        let rest = &line[host_end + 1..];
        let start = rest
            .iter()
            .position(|&b| !is_space(b))
            .unwrap_or(rest.len());
        let rest = &rest[start..];
        let end = rest.iter().position(|&b| is_space(b)).unwrap_or(rest.len());
        user = &rest[..end];
    }
    (
        String::from_utf8_lossy(&host).into_owned(),
        String::from_utf8_lossy(user).into_owned(),
    )
}

/// Blank, or a comment: the first non-blank byte is '#' (or nothing).
fn is_empty(line: &[u8]) -> bool {
    match line.iter().find(|&&b| !is_space(b)) {
        None | Some(b'#') | Some(0) => true,
        Some(_) => false,
    }
}

/// The lines of one file, first decisive one wins.
fn scan(content: &[u8], client: &Client, local: &Local, world: &mut dyn World) -> Scan {
    for (i, line) in content.split(|&b| b == b'\n').enumerate() {
        let number = i + 1;
        if is_empty(line) {
            continue;
        }
        let (host, user) = fields(line);
        let h = check_host(&host, client, world);
        if h < 0 {
            return Scan::Refuse(number);
        }
        if h == 0 {
            continue;
        }
        let user = if user.is_empty() { local.user } else { &user };
        match check_user(user, client.user, world) {
            u if u > 0 => return Scan::Allow(number),
            u if u < 0 => return Scan::Refuse(number),
            _ => {}
        }
    }
    Scan::NoMatch
}

/// 1: the host field names the client; -1: it refuses it; 0: neither.
fn check_host(field: &str, client: &Client, world: &mut dyn World) -> i32 {
    // The host netgroups are asked with: the confirmed name, or the address.
    let addr_text = client.addr.to_string();
    let name = client.name.unwrap_or(&addr_text);
    if let Some(group) = field.strip_prefix("+@") {
        return i32::from(world.innetgr(group, Some(name), None));
    }
    if let Some(group) = field.strip_prefix("-@") {
        return -i32::from(world.innetgr(group, Some(name), None));
    }
    let (negate, host) = match field.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None if field == "+" => return 1,
        None => (1, field),
    };
    if host == addr_text {
        return negate;
    }
    // Never ask the resolver about an empty name, a numeric address that
    // was not ours, or a name with odd bytes.
    if host.is_empty() || host.parse::<IpAddr>().is_ok() || !plausible_host(host) {
        return 0;
    }
    if world
        .addresses(host)
        .iter()
        .any(|a| same_addr(*a, client.addr))
    {
        negate
    } else {
        0
    }
}

/// 1: the user field names the client's user; -1: refuses it; 0: neither.
fn check_user(field: &str, ruser: &str, world: &mut dyn World) -> i32 {
    if let Some(group) = field.strip_prefix("+@") {
        return i32::from(world.innetgr(group, None, Some(ruser)));
    }
    if let Some(group) = field.strip_prefix("-@") {
        return -i32::from(world.innetgr(group, None, Some(ruser)));
    }
    if let Some(name) = field.strip_prefix('-') {
        return -i32::from(name == ruser);
    }
    if field == "+" {
        return 1;
    }
    i32::from(field == ruser)
}

/// IPv4-mapped IPv6 addresses are their IPv4 address.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}

fn same_addr(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

/// A host name worth asking the resolver about.
pub fn plausible_host(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The client's name, forward-confirmed: a name from the reverse lookup
/// of its address that resolves back to that address; None otherwise.
pub fn confirmed_name(
    addr: IpAddr,
    reverse: impl FnOnce(IpAddr) -> Option<String>,
    forward: impl FnOnce(&str) -> Vec<IpAddr>,
) -> Option<String> {
    let addr = canonical(addr);
    let name = reverse(addr)?;
    if !plausible_host(&name) || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    forward(&name)
        .iter()
        .any(|a| same_addr(*a, addr))
        .then_some(name)
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;

/// Fuzz entry point: arbitrary bytes as hosts.equiv and ~/.rhosts (split at
/// the first NUL; the first byte picks the account and the policy), decided
/// against a fixed world. Checked: the verdict is the same when asked twice,
/// an allowing line exists in the file that allowed, root is never let in by
/// hosts.equiv, and a user name starting with '-' is never let in.
pub fn fuzz_trust(data: &[u8]) {
    struct Fixed<'a> {
        equiv: &'a [u8],
        rhosts: &'a [u8],
    }
    impl World for Fixed<'_> {
        fn read(&mut self, _path: &Path, as_uid: Option<u32>) -> TrustFile {
            let content = if as_uid.is_none() {
                self.equiv
            } else {
                self.rhosts
            };
            TrustFile::Found {
                kind: FileKind::Regular,
                uid: as_uid.unwrap_or(0),
                mode: 0o600,
                nlink: 1,
                content: Some(content.to_vec()),
            }
        }
        fn addresses(&mut self, host: &str) -> Vec<IpAddr> {
            match host {
                "client.example" => vec![IpAddr::from([192, 0, 2, 7])],
                "other.example" => vec![IpAddr::from([192, 0, 2, 99])],
                _ => Vec::new(),
            }
        }
        fn innetgr(&mut self, group: &str, host: Option<&str>, user: Option<&str>) -> bool {
            group == "lab"
                && host.is_none_or(|h| h == "client.example")
                && user.is_none_or(|u| u == "bob")
        }
    }
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (equiv, rhosts) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let policy = Policy {
        hosts_equiv: PathBuf::from("/etc/hosts.equiv"),
        use_rhosts: pick & 1 == 0,
        root_rhosts: pick & 2 != 0,
    };
    let ruser = ["bob", "-bob", "root", "carol"][(pick as usize >> 2) & 3];
    let (luser, uid) = [
        ("alice", 1000),
        ("root", 0),
        ("-froot", 1001),
        ("bob", 1002),
    ][(pick as usize >> 4) & 3];
    let client = Client {
        addr: IpAddr::from([192, 0, 2, 7]),
        name: (pick & 0x40 == 0).then_some("client.example"),
        user: ruser,
    };
    let local = Local {
        user: luser,
        uid,
        home: Path::new("/home/x"),
    };
    let mut world = Fixed { equiv, rhosts };
    let first = decide(&policy, &client, &local, &mut world);
    assert_eq!(first, decide(&policy, &client, &local, &mut world));
    if let Decision::Allowed { file, line } = &first {
        assert!(!ruser.starts_with('-') && !luser.starts_with('-'));
        let content = if file == &policy.hosts_equiv {
            assert_ne!(uid, 0, "hosts.equiv never admits root");
            equiv
        } else {
            rhosts
        };
        assert!(*line >= 1 && *line <= content.split(|&b| b == b'\n').count());
    }
}
