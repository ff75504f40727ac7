use std::collections::HashMap;

use super::*;

/// Files and names as a test sets them up.
#[derive(Default)]
struct Fake {
    files: HashMap<PathBuf, TrustFile>,
    names: HashMap<String, Vec<IpAddr>>,
    /// (group, host or "", user or "")
    netgroups: Vec<(String, String, String)>,
    /// Reads: (path, as_uid)
    reads: Vec<(PathBuf, Option<u32>)>,
    lookups: Vec<String>,
}

impl World for Fake {
    fn read(&mut self, path: &Path, as_uid: Option<u32>) -> TrustFile {
        self.reads.push((path.to_path_buf(), as_uid));
        self.files.get(path).cloned().unwrap_or(TrustFile::Missing)
    }
    fn addresses(&mut self, host: &str) -> Vec<IpAddr> {
        self.lookups.push(host.to_string());
        self.names.get(host).cloned().unwrap_or_default()
    }
    fn innetgr(&mut self, group: &str, host: Option<&str>, user: Option<&str>) -> bool {
        self.netgroups.iter().any(|(g, h, u)| {
            g == group
                && host.is_none_or(|host| h.is_empty() || h == host)
                && user.is_none_or(|user| u.is_empty() || u == user)
        })
    }
}

const EQUIV: &str = "/etc/hosts.equiv";
const HOME: &str = "/home/alice";
const RHOSTS: &str = "/home/alice/.rhosts";
const ROOT_RHOSTS: &str = "/root/.rhosts";

fn file(text: &str, uid: u32, mode: u32) -> TrustFile {
    TrustFile::Found {
        kind: FileKind::Regular,
        uid,
        mode,
        nlink: 1,
        content: Some(text.as_bytes().to_vec()),
    }
}

fn policy() -> Policy {
    Policy {
        hosts_equiv: PathBuf::from(EQUIV),
        use_rhosts: true,
        root_rhosts: false,
    }
}

fn world() -> Fake {
    let mut w = Fake::default();
    w.names
        .insert("client.example".into(), vec!["192.0.2.7".parse().unwrap()]);
    w.names
        .insert("other.example".into(), vec!["192.0.2.99".parse().unwrap()]);
    w
}

/// alice (uid 1000) asked for by bob from 192.0.2.7 (client.example).
fn ask(w: &mut Fake, policy: &Policy) -> Decision {
    ask_as(w, policy, "bob", "alice", 1000)
}

fn ask_as(w: &mut Fake, policy: &Policy, ruser: &str, luser: &str, uid: u32) -> Decision {
    let client = Client {
        addr: "192.0.2.7".parse().unwrap(),
        name: Some("client.example"),
        user: ruser,
    };
    let home = if uid == 0 { "/root" } else { HOME };
    let local = Local {
        user: luser,
        uid,
        home: Path::new(home),
    };
    decide(policy, &client, &local, w)
}

fn rhosts(w: &mut Fake, text: &str) {
    w.files.insert(RHOSTS.into(), file(text, 1000, 0o600));
}

fn equiv(w: &mut Fake, text: &str) {
    w.files.insert(EQUIV.into(), file(text, 0, 0o644));
}

fn allowed_at(d: &Decision, path: &str, line: usize) {
    assert_eq!(
        d,
        &Decision::Allowed {
            file: PathBuf::from(path),
            line
        }
    );
}

#[test]
fn nothing_there_denies() {
    let mut w = world();
    let d = ask(&mut w, &policy());
    assert!(!d.allowed());
    assert!(d.to_string().contains("/etc/hosts.equiv: missing"), "{d}");
    assert!(d.to_string().contains(".rhosts: missing"), "{d}");
}

#[test]
fn hosts_equiv_first_then_rhosts_read_as_the_user() {
    let mut w = world();
    equiv(&mut w, "client.example bob\n");
    rhosts(&mut w, "client.example bob\n");
    allowed_at(&ask(&mut w, &policy()), EQUIV, 1);
    assert_eq!(w.reads, vec![(PathBuf::from(EQUIV), None)]);
    let mut w = world();
    rhosts(&mut w, "# trusted\n\nclient.example bob\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 3);
    assert_eq!(
        w.reads,
        vec![
            (PathBuf::from(EQUIV), None),
            (PathBuf::from(RHOSTS), Some(1000))
        ]
    );
}

#[test]
fn a_host_alone_means_the_same_user_name() {
    let mut w = world();
    equiv(&mut w, "client.example\n");
    assert!(!ask(&mut w, &policy()).allowed());
    allowed_at(&ask_as(&mut w, &policy(), "alice", "alice", 1000), EQUIV, 1);
}

#[test]
fn hosts_equiv_is_never_for_root() {
    let mut w = world();
    equiv(&mut w, "+ +\n");
    let d = ask_as(&mut w, &policy(), "root", "root", 0);
    assert!(!d.allowed());
    assert!(d.to_string().contains("never for root"), "{d}");
    assert!(d.to_string().contains("root_rhosts is off"), "{d}");
    assert!(w.reads.is_empty(), "{:?}", w.reads);
    // root_rhosts lets root in through its own .rhosts, hosts.equiv never.
    let mut p = policy();
    p.root_rhosts = true;
    assert!(!ask_as(&mut w, &p, "root", "root", 0).allowed());
    w.files
        .insert(ROOT_RHOSTS.into(), file("client.example root\n", 0, 0o600));
    allowed_at(&ask_as(&mut w, &p, "root", "root", 0), ROOT_RHOSTS, 1);
}

#[test]
fn use_rhosts_off_reads_no_rhosts() {
    let mut w = world();
    rhosts(&mut w, "+ +\n");
    let mut p = policy();
    p.use_rhosts = false;
    let d = ask(&mut w, &p);
    assert!(d.to_string().contains("use_rhosts is off"), "{d}");
    assert_eq!(w.reads, vec![(PathBuf::from(EQUIV), None)]);
}

#[test]
fn plus_plus_trusts_everyone() {
    let mut w = world();
    rhosts(&mut w, "+ +\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 1);
    // "+" alone: any host, the same user name.
    rhosts(&mut w, "+\n");
    assert!(!ask(&mut w, &policy()).allowed());
    allowed_at(
        &ask_as(&mut w, &policy(), "alice", "alice", 1000),
        RHOSTS,
        1,
    );
}

#[test]
fn negative_lines_refuse_and_the_first_decisive_line_wins() {
    let mut w = world();
    rhosts(&mut w, "-client.example\n+ +\n");
    let d = ask(&mut w, &policy());
    assert!(d.to_string().contains(".rhosts line 1 refuses"), "{d}");
    rhosts(&mut w, "+ -bob\n+ +\n");
    assert!(ask(&mut w, &policy())
        .to_string()
        .contains("line 1 refuses"));
    // A negative line for someone else is not decisive.
    rhosts(&mut w, "-other.example\n+ -carol\n+ +\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 3);
    // An allowing line before the negative one wins.
    rhosts(&mut w, "client.example bob\n-client.example\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 1);
    // "host -user" for another user goes on to the next line.
    rhosts(&mut w, "client.example -carol\nclient.example bob\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 2);
}

#[test]
fn a_refusal_in_hosts_equiv_leaves_rhosts_its_say() {
    let mut w = world();
    equiv(&mut w, "-client.example\n");
    rhosts(&mut w, "client.example bob\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 1);
}

#[test]
fn numeric_addresses_and_names_match_by_address() {
    let mut w = world();
    rhosts(&mut w, "192.0.2.7 bob\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 1);
    assert!(w.lookups.is_empty(), "a numeric line needs no lookup");
    rhosts(
        &mut w,
        "192.0.2.8 bob\nother.example bob\nnowhere.example bob\n",
    );
    assert!(!ask(&mut w, &policy()).allowed());
    // Names from the file are resolved and compared by address.
    w.names
        .insert("alias.example".into(), vec!["192.0.2.7".parse().unwrap()]);
    rhosts(&mut w, "ALIAS.example bob\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 1);
}

#[test]
fn the_clients_own_reverse_name_never_matches_unconfirmed() {
    // The client claims (by its reverse DNS) to be trusted.example, which
    // resolves elsewhere: the monitor's confirmed name is None, and the
    // file's name resolves to another address.
    let mut w = world();
    w.names.insert(
        "trusted.example".into(),
        vec!["198.51.100.1".parse().unwrap()],
    );
    let addr: IpAddr = "192.0.2.7".parse().unwrap();
    let name = confirmed_name(addr, |_| Some("trusted.example".into()), |n| w.addresses(n));
    assert_eq!(name, None);
    assert_eq!(
        confirmed_name(addr, |_| Some("client.example".into()), |n| w.addresses(n)).as_deref(),
        Some("client.example")
    );
    assert_eq!(confirmed_name(addr, |_| None, |n| w.addresses(n)), None);
    assert_eq!(
        confirmed_name(addr, |_| Some("192.0.2.7".into()), |n| w.addresses(n)),
        None
    );
    rhosts(&mut w, "trusted.example bob\n");
    let client = Client {
        addr,
        name: None,
        user: "bob",
    };
    let local = Local {
        user: "alice",
        uid: 1000,
        home: Path::new(HOME),
    };
    assert!(!decide(&policy(), &client, &local, &mut w).allowed());
}

#[test]
fn ipv4_mapped_clients_match_ipv4_lines() {
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    assert_eq!(canonical(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    let mut w = world();
    let n = confirmed_name(
        mapped,
        |_| Some("client.example".into()),
        |n| w.addresses(n),
    );
    assert_eq!(n.as_deref(), Some("client.example"));
}

#[test]
fn netgroups_for_hosts_and_users() {
    let mut w = world();
    w.netgroups
        .push(("trusted".into(), "client.example".into(), "".into()));
    w.netgroups.push(("staff".into(), "".into(), "bob".into()));
    rhosts(&mut w, "+@trusted bob\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 1);
    rhosts(&mut w, "+@nobodys bob\n+ +@staff\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 2);
    rhosts(&mut w, "-@trusted\n+ +\n");
    assert!(ask(&mut w, &policy())
        .to_string()
        .contains("line 1 refuses"));
    rhosts(&mut w, "+ -@staff\n+ +\n");
    assert!(ask(&mut w, &policy())
        .to_string()
        .contains("line 1 refuses"));
    // Without a confirmed name, netgroups are asked with the address.
    w.netgroups
        .push(("byaddr".into(), "192.0.2.7".into(), "".into()));
    rhosts(&mut w, "+@byaddr +\n");
    let client = Client {
        addr: "192.0.2.7".parse().unwrap(),
        name: None,
        user: "bob",
    };
    let local = Local {
        user: "alice",
        uid: 1000,
        home: Path::new(HOME),
    };
    allowed_at(&decide(&policy(), &client, &local, &mut w), RHOSTS, 1);
}

#[test]
fn unsafe_files_are_refused() {
    let cases = [
        (file("+ +\n", 1000, 0o602), "writable by group or others"),
        (file("+ +\n", 1000, 0o620), "writable by group or others"),
        (file("+ +\n", 1001, 0o600), "owned by uid 1001"),
        (
            TrustFile::Found {
                kind: FileKind::Symlink,
                uid: 1000,
                mode: 0o777,
                nlink: 1,
                content: None,
            },
            "a symbolic link",
        ),
        (
            TrustFile::Found {
                kind: FileKind::Other,
                uid: 1000,
                mode: 0o600,
                nlink: 1,
                content: None,
            },
            "not a regular file",
        ),
        (
            TrustFile::Found {
                kind: FileKind::Regular,
                uid: 1000,
                mode: 0o600,
                nlink: 2,
                content: Some(b"+ +\n".to_vec()),
            },
            "hard-linked",
        ),
        (
            TrustFile::Found {
                kind: FileKind::Regular,
                uid: 1000,
                mode: 0o600,
                nlink: 1,
                content: None,
            },
            "larger than",
        ),
        (
            TrustFile::Unreadable("Permission denied".into()),
            "Permission denied",
        ),
    ];
    for (f, why) in cases {
        let mut w = world();
        w.files.insert(RHOSTS.into(), f);
        let d = ask(&mut w, &policy());
        assert!(!d.allowed(), "{why}");
        assert!(d.to_string().contains(why), "{d} / {why}");
    }
    // Root may own a user's .rhosts; a read-only one is fine.
    let mut w = world();
    w.files.insert(RHOSTS.into(), file("+ +\n", 0, 0o444));
    assert!(ask(&mut w, &policy()).allowed());
    // hosts.equiv must be root's.
    let mut w = world();
    w.files.insert(EQUIV.into(), file("+ +\n", 1000, 0o644));
    let d = ask(&mut w, &policy());
    assert!(d.to_string().contains("owned by uid 1000"), "{d}");
}

#[test]
fn leading_dashes_in_names_are_refused() {
    let mut w = world();
    rhosts(&mut w, "+ +\n");
    assert!(!ask_as(&mut w, &policy(), "-froot", "alice", 1000).allowed());
    assert!(!ask_as(&mut w, &policy(), "bob", "-froot", 1000).allowed());
    assert!(w.reads.is_empty());
}

#[test]
fn lines_are_cut_as_glibc_cuts_them() {
    assert_eq!(
        fields(b"Host.Example  bob  extra"),
        ("host.example".into(), "bob".into())
    );
    assert_eq!(fields(b"host\tbob\r"), ("host".into(), "bob".into()));
    // A host ended by a CR (not space or tab) has no user field.
    assert_eq!(fields(b"host\r"), ("host".into(), "".into()));
    // A leading blank makes an empty host, which matches nothing.
    assert_eq!(fields(b" host bob"), ("".into(), "host".into()));
    // A NUL ends the line.
    assert_eq!(fields(b"host\0 bob"), ("host".into(), "".into()));
    assert!(is_empty(b"   "));
    assert!(is_empty(b"  # note"));
    assert!(!is_empty(b"x # note"));
    let mut w = world();
    rhosts(&mut w, " client.example bob\n");
    assert!(!ask(&mut w, &policy()).allowed());
    // CRLF files work: the CR ends the user name.
    rhosts(&mut w, "client.example bob\r\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 1);
    // User names compare exactly; a trailing comment is a user named "#".
    rhosts(&mut w, "client.example Bob\nclient.example # bob\n");
    assert!(!ask(&mut w, &policy()).allowed());
    // "-" alone and "-+" are neither a refusal nor "+".
    rhosts(&mut w, "- bob\n-+ bob\nclient.example bob\n");
    allowed_at(&ask(&mut w, &policy()), RHOSTS, 3);
}

#[test]
fn odd_names_are_never_looked_up() {
    let mut w = world();
    rhosts(&mut w, "a/b bob\nx\u{e9}y bob\n10.0.0.1 bob\n");
    assert!(!ask(&mut w, &policy()).allowed());
    assert!(w.lookups.is_empty(), "{:?}", w.lookups);
}
