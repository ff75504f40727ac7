//! aliases(5) and ~/.forward: parsing, and the expansion of a local
//! recipient into local accounts and remote addresses. Lists, chains,
//! `:include:` files and `\user` are followed; loops are detected. The
//! accounts, .forward files and include files come through `Directory`, so
//! the expansion is pure and tested with a fake.

use std::collections::HashMap;

/// The parsed aliases file: lower-cased names to their entries.
#[derive(Clone, Debug, Default)]
pub struct Aliases {
    map: HashMap<String, Vec<String>>,
}

impl Aliases {
    /// Parse aliases(5) text: `name: entry, entry`, continuation lines start
    /// with white space, `#` comments. Returns the table and warnings.
    pub fn parse(text: &str) -> (Aliases, Vec<String>) {
        let mut map = HashMap::new();
        let mut warnings = Vec::new();
        let mut logical: Vec<(usize, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim_start().starts_with('#') {
                continue;
            }
            if raw.trim().is_empty() {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                match logical.last_mut() {
                    Some((_, l)) => {
                        l.push(' ');
                        l.push_str(raw.trim());
                    }
                    None => warnings.push(format!("line {}: continuation without an alias", i + 1)),
                }
            } else {
                logical.push((i + 1, raw.trim().to_string()));
            }
        }
        for (n, line) in logical {
            let Some((name, rest)) = line.split_once(':') else {
                warnings.push(format!("line {n}: missing ':'"));
                continue;
            };
            let name = name.trim().trim_matches('"').to_ascii_lowercase();
            let entries = split_entries(rest);
            if name.is_empty() || entries.is_empty() {
                warnings.push(format!("line {n}: empty alias"));
                continue;
            }
            map.insert(name, entries);
        }
        (Aliases { map }, warnings)
    }

    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.map.get(&name.to_ascii_lowercase()).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Split a list of entries on commas and newlines outside double quotes.
pub fn split_entries(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' | '\n' | '\r' if !quoted => {
                push_entry(&mut out, &cur);
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    push_entry(&mut out, &cur);
    out
}

fn push_entry(out: &mut Vec<String>, e: &str) {
    let e = e.trim();
    if e.is_empty() || e.starts_with('#') {
        return;
    }
    // `"|cmd"` and `"/file"` may be quoted whole; `<addr>` may be bracketed.
    let e = if e.len() >= 2 && e.starts_with('"') && e.ends_with('"') && !e[1..].contains("\"@") {
        &e[1..e.len() - 1]
    } else {
        e
    };
    let e = e
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(e);
    out.push(e.to_string());
}

/// Where the expansion gets accounts and files from.
pub trait Directory {
    /// The account's canonical name if `name` is a local account.
    fn account(&self, name: &str) -> Result<Option<String>, String>;
    /// The text of the account's ~/.forward, if it has a usable one.
    fn forward(&self, account: &str) -> Option<String>;
    /// The text of an `:include:` file.
    fn include(&self, path: &str) -> Result<String, String>;
    /// Whether a domain is delivered here.
    fn is_local_domain(&self, domain: &str) -> bool;
}

/// One final destination of a local recipient.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A local account (its name), delivered to its mailbox.
    Local(String),
    /// An address elsewhere, relayed.
    Remote(String),
    /// `/dev/null`: accepted and dropped.
    Discard,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Targets(Vec<Target>),
    /// No such local recipient.
    Unknown,
    /// An alias loop (or a chain too deep).
    Loop,
    /// The account store could not be read: try again later.
    Unavailable(String),
}

const MAX_DEPTH: usize = 20;
const MAX_TARGETS: usize = 1000;

struct Expander<'a> {
    aliases: &'a Aliases,
    dir: &'a dyn Directory,
    out: Vec<Target>,
    stack: Vec<String>,
    warnings: Vec<String>,
}

enum Stop {
    Loop,
    Unavailable(String),
}

/// Expand the local part of a local recipient. Warnings (unsupported
/// entries, unknown members of a list) are returned for the log.
pub fn resolve(aliases: &Aliases, dir: &dyn Directory, local: &str) -> (Resolution, Vec<String>) {
    let mut e = Expander {
        aliases,
        dir,
        out: Vec::new(),
        stack: Vec::new(),
        warnings: Vec::new(),
    };
    let r = match e.name(local, true, true) {
        Err(Stop::Loop) => Resolution::Loop,
        Err(Stop::Unavailable(w)) => Resolution::Unavailable(w),
        Ok(false) if local.eq_ignore_ascii_case("postmaster") => {
            // postmaster always exists (RFC 5321 4.5.1): root's mail, or
            // root's mailbox when root's alias delivers nowhere.
            match e.name("root", true, true) {
                Ok(true) if !e.out.is_empty() => Resolution::Targets(e.out),
                Ok(_) => Resolution::Targets(vec![Target::Local("root".into())]),
                Err(Stop::Loop) => Resolution::Loop,
                Err(Stop::Unavailable(w)) => Resolution::Unavailable(w),
            }
        }
        Ok(false) => Resolution::Unknown,
        Ok(true) if e.out.is_empty() => Resolution::Unknown,
        Ok(true) => Resolution::Targets(e.out),
    };
    (r, e.warnings)
}

impl Expander<'_> {
    fn add(&mut self, t: Target) {
        if !self.out.contains(&t) && self.out.len() < MAX_TARGETS {
            self.out.push(t);
        }
    }

    /// Expand a local name. Ok(false): it names nothing here.
    fn name(&mut self, name: &str, use_alias: bool, use_forward: bool) -> Result<bool, Stop> {
        if self.stack.len() > MAX_DEPTH {
            return Err(Stop::Loop);
        }
        let key = name.to_ascii_lowercase();
        if use_alias && self.stack.contains(&key) {
            // `root: root, backup` names the account itself; any other
            // return to a name on the path is a loop.
            if self.stack.last() == Some(&key) {
                return self.account(name, false);
            }
            return Err(Stop::Loop);
        }
        if use_alias {
            if let Some(entries) = self.aliases.get(&key) {
                let entries = entries.to_vec();
                self.stack.push(key);
                let r = self.entries(&entries);
                self.stack.pop();
                return r.map(|_| true);
            }
        }
        if self.account(name, use_forward)? {
            return Ok(true);
        }
        // user+detail@ delivers to user.
        if let Some((base, _)) = name.split_once('+') {
            if !base.is_empty() {
                return self.name(base, use_alias, use_forward);
            }
        }
        Ok(false)
    }

    fn account(&mut self, name: &str, use_forward: bool) -> Result<bool, Stop> {
        let found = match self.dir.account(name).map_err(Stop::Unavailable)? {
            Some(a) => Some(a),
            None if name.bytes().any(|b| b.is_ascii_uppercase()) => self
                .dir
                .account(&name.to_ascii_lowercase())
                .map_err(Stop::Unavailable)?,
            None => None,
        };
        let Some(account) = found else {
            return Ok(false);
        };
        let key = account.to_ascii_lowercase();
        if use_forward && !self.stack.contains(&key) {
            if let Some(text) = self.dir.forward(&account) {
                let entries = split_entries(&text);
                if !entries.is_empty() {
                    self.stack.push(key);
                    let r = self.forward_entries(&account, &entries);
                    self.stack.pop();
                    return r.map(|_| true);
                }
            }
        }
        self.add(Target::Local(account));
        Ok(true)
    }

    fn forward_entries(&mut self, account: &str, entries: &[String]) -> Result<(), Stop> {
        for e in entries {
            if e.starts_with(":include:") {
                // A user may not make the daemon read arbitrary files.
                self.warnings.push(format!(
                    "{account}/.forward: :include: not allowed; skipped"
                ));
                continue;
            }
            let plain = e.strip_prefix('\\').unwrap_or(e);
            let local = self.local_name(plain);
            if local
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case(account))
            {
                self.add(Target::Local(account.to_string()));
            } else if e.starts_with('\\') {
                if let Some(l) = local {
                    if !self.account(&l, false)? {
                        self.warnings
                            .push(format!("{account}/.forward: unknown user {l}"));
                    }
                }
            } else {
                self.entry(e)?;
            }
        }
        Ok(())
    }

    /// The local name an entry designates, if it is local.
    fn local_name(&self, e: &str) -> Option<String> {
        match e.rsplit_once('@') {
            Some((l, d)) if self.dir.is_local_domain(d) => Some(l.to_string()),
            Some(_) => None,
            None => Some(e.to_string()),
        }
    }

    fn entries(&mut self, entries: &[String]) -> Result<(), Stop> {
        for e in entries {
            self.entry(e)?;
        }
        Ok(())
    }

    fn entry(&mut self, e: &str) -> Result<(), Stop> {
        if let Some(path) = e.strip_prefix(":include:") {
            if self.stack.len() > MAX_DEPTH {
                return Err(Stop::Loop);
            }
            let path = path.trim();
            match self.dir.include(path) {
                Ok(text) => {
                    let list = split_entries(&text);
                    self.stack.push(format!(":include:{path}"));
                    let r = self.entries(&list);
                    self.stack.pop();
                    r?;
                }
                Err(w) => self.warnings.push(format!(":include:{path}: {w}")),
            }
            return Ok(());
        }
        if e == "/dev/null" {
            self.add(Target::Discard);
            return Ok(());
        }
        if e.starts_with('|') || e.starts_with('/') {
            self.warnings
                .push(format!("{e}: pipes and files are not supported; skipped"));
            return Ok(());
        }
        if let Some(name) = e.strip_prefix('\\') {
            if !self.account(name, false)? {
                self.warnings.push(format!("unknown user {name}"));
            }
            return Ok(());
        }
        match self.local_name(e) {
            Some(l) => {
                if !self.name(&l, true, true)? {
                    self.warnings.push(format!("unknown local recipient {l}"));
                }
            }
            None => self.add(Target::Remote(e.to_string())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        accounts: &'static [&'static str],
        forwards: &'static [(&'static str, &'static str)],
        includes: &'static [(&'static str, &'static str)],
        broken: bool,
    }

    impl Directory for Fake {
        fn account(&self, name: &str) -> Result<Option<String>, String> {
            if self.broken {
                return Err("passwd unreadable".into());
            }
            Ok(self.accounts.contains(&name).then(|| name.to_string()))
        }
        fn forward(&self, account: &str) -> Option<String> {
            self.forwards
                .iter()
                .find(|(a, _)| *a == account)
                .map(|(_, t)| t.to_string())
        }
        fn include(&self, path: &str) -> Result<String, String> {
            self.includes
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| "cannot read".into())
        }
        fn is_local_domain(&self, d: &str) -> bool {
            d.eq_ignore_ascii_case("here.test")
        }
    }

    const FAKE: Fake = Fake {
        accounts: &["root", "demo", "alice", "bob"],
        forwards: &[
            ("bob", "bob@elsewhere.test\n\\bob\n:include:/etc/shadow\n"),
            ("alice", "# comment\n"),
        ],
        includes: &[("/etc/mail/team", "alice, bob@here.test\ncarol@far.test\n")],
        broken: false,
    };

    const TEXT: &str = "# aliases\n\
        postmaster: root\n\
        root: demo\n\
        staff: alice,\n  demo, \"|/usr/bin/vacation\", /var/log/mail\n\
        team: :include:/etc/mail/team\n\
        self: self, demo\n\
        loop1: loop2\n\
        loop2: loop1\n\
        chain: staff\n\
        ext: someone@far.test\n\
        nobody: /dev/null\n\
        Mixed: demo\n\
        ghostlist: ghost, demo\n\
        ghostonly: ghost\n";

    fn r(name: &str) -> Resolution {
        let (a, w) = Aliases::parse(TEXT);
        assert!(w.is_empty(), "{w:?}");
        resolve(&a, &FAKE, name).0
    }

    fn locals(names: &[&str]) -> Resolution {
        Resolution::Targets(names.iter().map(|n| Target::Local(n.to_string())).collect())
    }

    #[test]
    fn parse_continuations_and_quotes() {
        let (a, w) = Aliases::parse(TEXT);
        assert!(w.is_empty());
        assert_eq!(
            a.get("STAFF").unwrap(),
            ["alice", "demo", "|/usr/bin/vacation", "/var/log/mail"]
        );
        let (_, w) = Aliases::parse("  orphan\nnocolon\nempty:\n");
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn plain_accounts_and_plus_detail() {
        assert_eq!(r("demo"), locals(&["demo"]));
        assert_eq!(r("demo+lists"), locals(&["demo"]));
        assert_eq!(r("nosuch"), Resolution::Unknown);
    }

    #[test]
    fn chains_and_lists() {
        assert_eq!(r("root"), locals(&["demo"]));
        assert_eq!(r("postmaster"), locals(&["demo"]));
        assert_eq!(r("PostMaster"), locals(&["demo"]));
        assert_eq!(r("chain"), locals(&["alice", "demo"]));
        assert_eq!(r("mixed"), locals(&["demo"]));
        assert_eq!(
            r("ext"),
            Resolution::Targets(vec![Target::Remote("someone@far.test".into())])
        );
        assert_eq!(r("nobody"), Resolution::Targets(vec![Target::Discard]));
    }

    #[test]
    fn includes_and_forward() {
        // bob's .forward keeps a copy (\bob) and forwards one away.
        assert_eq!(
            r("team"),
            Resolution::Targets(vec![
                Target::Local("alice".into()),
                Target::Remote("bob@elsewhere.test".into()),
                Target::Local("bob".into()),
                Target::Remote("carol@far.test".into()),
            ])
        );
        // A .forward with only a comment is no forward.
        assert_eq!(r("alice"), locals(&["alice"]));
        // :include: in a .forward is refused (bob's names /etc/shadow).
        let (a, _) = Aliases::parse(TEXT);
        let (_, w) = resolve(&a, &FAKE, "bob");
        assert!(
            w.iter().any(|w| w.contains(":include: not allowed")),
            "{w:?}"
        );
    }

    #[test]
    fn loops() {
        // `self: self, demo`: the self-reference is the account `self`,
        // which does not exist here, so only demo remains.
        assert_eq!(r("self"), locals(&["demo"]));
        assert_eq!(r("loop1"), Resolution::Loop);
    }

    #[test]
    fn unknown_members() {
        assert_eq!(r("ghostlist"), locals(&["demo"]));
        // An alias whose every member is unknown delivers nowhere: 550.
        let (a, _) = Aliases::parse(TEXT);
        let (res, w) = resolve(&a, &FAKE, "ghostonly");
        assert_eq!(res, Resolution::Unknown);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn postmaster_always_exists() {
        let (a, _) = Aliases::parse("");
        let f = Fake {
            accounts: &["demo"],
            forwards: &[],
            includes: &[],
            broken: false,
        };
        assert_eq!(resolve(&a, &f, "postmaster").0, locals(&["root"]));
        let f = Fake { broken: true, ..f };
        assert!(matches!(
            resolve(&a, &f, "demo").0,
            Resolution::Unavailable(_)
        ));
    }

    /// Found by fuzzing (fuzz/fuzz_targets/aliases.rs): root's alias whose
    /// members are all unknown made postmaster resolve to no target at
    /// all, so that its mail was accepted and delivered nowhere.
    #[test]
    fn postmaster_never_resolves_to_nothing() {
        let (a, _) = Aliases::parse("postm5ster: root\nroot:  \\dher,\n  conb: a\n:cd tstataff");
        let (r, _) = resolve(&a, &FAKE, "postmaster");
        assert_eq!(r, Resolution::Targets(vec![Target::Local("root".into())]));
        let (a, _) = Aliases::parse("root: \\nobody, /var/log/x");
        let (r, _) = resolve(&a, &FAKE, "Postmaster");
        assert_eq!(r, Resolution::Targets(vec![Target::Local("root".into())]));
    }
}
