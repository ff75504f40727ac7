//! Logged-in commands carried out on the account's store, in the account's
//! process: folder management, LIST, STATUS, APPEND, SELECT and the
//! selected state's FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE. Replies go
//! to a `Sink`, which sends large answers (FETCH 1:* BODY[]) in pieces, so
//! memory stays bounded by one message.

mod messages;

use std::collections::HashMap;
use std::io;

use super::command::{
    Command, FetchAtt, ListOptions, Qresync, SearchKey, SearchReturn, StoreMode, Tagged,
};
use super::fetch::{self, Loaded, Meta, Need};
use super::mime;
use super::mutf7;
use super::search::{self, Data, Facts};
use super::selected::{Selected, Style};
use super::state::Enabled;
use super::syntax::{astring, compress, quote, SeqSet};
use crate::mail::store::{self, Flag, FlagChange, Flags, Folder, StoreError, Tree, SEPARATOR};

/// Where replies go.
pub trait Sink {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
}

/// The logged-in side of a session.
pub struct Mailboxes {
    pub tree: Tree,
    pub selected: Option<Selected>,
    pub append_limit: u64,
    pub user: String,
}

fn line(s: &str) -> Vec<u8> {
    format!("{s}\r\n").into_bytes()
}

/// Special-use attributes (RFC 6154) by the usual names.
fn special_use(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "sent" | "sent messages" | "sent items" => Some("\\Sent"),
        "drafts" => Some("\\Drafts"),
        "trash" | "deleted messages" | "deleted items" => Some("\\Trash"),
        "junk" | "spam" => Some("\\Junk"),
        "archive" | "archives" => Some("\\Archive"),
        _ => None,
    }
}

/// LIST pattern matching: `*` any run, `%` any run without the separator.
fn pattern_matches(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|i| pattern_matches(&pat[1..], &name[i..])),
        Some(b'%') => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != SEPARATOR as u8)
            .any(|i| pattern_matches(&pat[1..], &name[i..])),
        Some(&c) => name.first().is_some_and(|&n| n == c) && pattern_matches(&pat[1..], &name[1..]),
    }
}

/// A LIST pattern with INBOX matched in any case.
fn list_match(pat: &str, name: &str) -> bool {
    let norm = |s: &str| {
        if s.len() >= 5
            && s[..5].eq_ignore_ascii_case("INBOX")
            && (s.len() == 5 || s.as_bytes()[5] == SEPARATOR as u8)
        {
            format!("INBOX{}", &s[5..])
        } else {
            s.to_string()
        }
    };
    pattern_matches(norm(pat).as_bytes(), norm(name).as_bytes())
}

impl Mailboxes {
    /// A mailbox name from the client, in stored form (modified UTF-7),
    /// trailing separator dropped.
    fn stored_name(&self, raw: &[u8], en: Enabled) -> Result<String, String> {
        let s = std::str::from_utf8(raw).map_err(|_| "Mailbox name is not UTF-8".to_string())?;
        let s = s.strip_suffix(SEPARATOR).unwrap_or(s);
        let name = if en.utf8 || en.rev2 {
            mutf7::encode(s)
        } else {
            if mutf7::decode(s).is_none() {
                return Err("Mailbox name is not valid modified UTF-7".into());
            }
            s.to_string()
        };
        store::check_name(&name).map_err(|e| format!("Invalid mailbox name: {e}"))?;
        Ok(store::normalize(&name))
    }

    /// A stored name as the client sees it.
    fn shown_name(name: &str, en: Enabled) -> Vec<u8> {
        if en.utf8 || en.rev2 {
            astring(&mutf7::decode(name).unwrap_or_else(|| name.to_string()))
        } else {
            astring(name)
        }
    }

    fn style(&self, en: Enabled) -> Style {
        Style {
            qresync: en.qresync,
            condstore: en.condstore,
            rev2: en.rev2,
        }
    }

    /// Untagged updates for the selected folder (after NOOP, IDLE wake-ups
    /// and most commands).
    pub fn updates(&mut self, allow_expunge: bool, en: Enabled) -> io::Result<Vec<u8>> {
        let style = self.style(en);
        match self.selected.as_mut() {
            None => Ok(Vec::new()),
            Some(s) => {
                s.sync()?;
                Ok(s.updates(allow_expunge, style))
            }
        }
    }

    /// Carry out one command; the tagged reply is the last thing sent.
    pub fn execute(&mut self, t: Tagged, en: &mut Enabled, out: &mut dyn Sink) -> io::Result<()> {
        let tag = t.tag.clone();
        let r = self.dispatch(t, en, out);
        let reply = match r {
            Ok(text) => text,
            Err(e) => {
                log::error!("user {}: {e}", self.user);
                line(&format!("{tag} NO [SERVERBUG] {e}"))
            }
        };
        out.send(&reply)
    }

    fn need_selected(&self, tag: &str) -> Option<Vec<u8>> {
        self.selected
            .is_none()
            .then(|| line(&format!("{tag} BAD No mailbox selected")))
    }

    fn dispatch(&mut self, t: Tagged, en: &mut Enabled, out: &mut dyn Sink) -> io::Result<Vec<u8>> {
        let tag = t.tag.as_str();
        let ok = |what: &str| line(&format!("{tag} OK {what} completed"));
        let selected_only = matches!(
            t.command,
            Command::Check
                | Command::Close
                | Command::Unselect
                | Command::Expunge(_)
                | Command::Search { .. }
                | Command::Fetch { .. }
                | Command::Store { .. }
                | Command::Copy(..)
                | Command::Move(..)
        );
        if selected_only {
            if let Some(r) = self.need_selected(tag) {
                return Ok(r);
            }
        }
        let enables_condstore = match &t.command {
            Command::Fetch {
                atts,
                changed_since,
                ..
            } => changed_since.is_some() || atts.contains(&FetchAtt::ModSeq),
            Command::Store {
                unchanged_since, ..
            } => unchanged_since.is_some(),
            Command::Search { key, .. } => search::uses_modseq(key),
            _ => false,
        };
        if enables_condstore && !en.condstore {
            en.condstore = true;
            if let Some(s) = &self.selected {
                let h = s.folder.highest_modseq();
                out.send(&line(&format!("* OK [HIGHESTMODSEQ {h}] Highest")))?;
            }
        }
        match t.command {
            Command::Noop | Command::Check => {
                let u = self.updates(true, *en)?;
                out.send(&u)?;
                Ok(ok(if matches!(t.command, Command::Noop) {
                    "NOOP"
                } else {
                    "CHECK"
                }))
            }
            Command::Namespace => {
                Ok([line("* NAMESPACE ((\"\" \".\")) NIL NIL"), ok("NAMESPACE")].concat())
            }
            Command::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => self.select(tag, &mailbox, read_only, condstore, qresync, en, out),
            Command::Create(m) => self.simple(tag, &m, *en, "CREATE", |tree, n| tree.create(n)),
            Command::Delete(m) => {
                let name = match self.stored_name(&m, *en) {
                    Ok(n) => n,
                    Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
                };
                if self.selected.as_ref().is_some_and(|s| s.name == name) {
                    self.selected = None;
                    out.send(b"* OK [CLOSED] Mailbox deleted\r\n")?;
                }
                self.simple(tag, &m, *en, "DELETE", |tree, n| tree.delete(n))
            }
            Command::Subscribe(m) => {
                self.simple(tag, &m, *en, "SUBSCRIBE", |tree, n| tree.subscribe(n, true))
            }
            Command::Unsubscribe(m) => self.simple(tag, &m, *en, "UNSUBSCRIBE", |tree, n| {
                tree.subscribe(n, false)
            }),
            Command::Rename(a, b) => {
                let to = match self.stored_name(&b, *en) {
                    Ok(n) => n,
                    Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
                };
                self.simple(tag, &a, *en, "RENAME", |tree, n| tree.rename(n, &to))
            }
            Command::List {
                reference,
                patterns,
                options,
            } => self.list(tag, &reference, &patterns, &options, false, *en, out),
            Command::Lsub(reference, pattern) => {
                let o = ListOptions {
                    subscribed: true,
                    ..ListOptions::default()
                };
                self.list(tag, &reference, &[pattern], &o, true, *en, out)
            }
            Command::Status(m, items) => {
                let name = match self.stored_name(&m, *en) {
                    Ok(n) => n,
                    Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
                };
                match self.status_line(&name, &items, *en) {
                    Ok(l) => Ok([l, ok("STATUS")].concat()),
                    Err(StoreError::NotFound) | Err(StoreError::Invalid(_)) => {
                        Ok(line(&format!("{tag} NO [NONEXISTENT] No such mailbox")))
                    }
                    Err(e) => Ok(line(&format!("{tag} NO {e}"))),
                }
            }
            Command::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(tag, &mailbox, &flags, date, &message, *en, out),
            Command::Close => {
                let s = self.selected.take().expect("checked");
                if !s.read_only {
                    let mut s = s;
                    let del: Vec<usize> = (0..s.folder.messages.len())
                        .filter(|&i| s.folder.messages[i].flags.has(Flag::Deleted))
                        .collect();
                    if !del.is_empty() {
                        s.folder.expunge(&del)?;
                    }
                }
                Ok(ok("CLOSE"))
            }
            Command::Unselect => {
                self.selected = None;
                Ok(ok("UNSELECT"))
            }
            Command::Expunge(set) => self.expunge(tag, set.as_ref(), *en, out),
            Command::Search { ret, charset, key } => {
                self.search(tag, t.uid, ret, charset, &key, *en, out)
            }
            Command::Fetch {
                set,
                atts,
                changed_since,
                vanished,
            } => {
                if changed_since.is_some() {
                    en.condstore = true;
                }
                if vanished && (!t.uid || !en.qresync) {
                    return Ok(line(&format!(
                        "{tag} BAD VANISHED needs UID FETCH and QRESYNC"
                    )));
                }
                self.fetch(tag, t.uid, &set, &atts, changed_since, vanished, *en, out)
            }
            Command::Store {
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            } => {
                if unchanged_since.is_some() {
                    en.condstore = true;
                }
                self.store(
                    tag,
                    t.uid,
                    &set,
                    mode,
                    silent,
                    &flags,
                    unchanged_since,
                    *en,
                    out,
                )
            }
            Command::Copy(set, m) => self.copy(tag, t.uid, &set, &m, false, *en, out),
            Command::Move(set, m) => self.copy(tag, t.uid, &set, &m, true, *en, out),
            // IDLE is the session's (it needs the connection); the rest
            // never comes here.
            _ => Ok(line(&format!("{tag} BAD Command not valid here"))),
        }
    }

    fn simple(
        &mut self,
        tag: &str,
        raw: &[u8],
        en: Enabled,
        what: &str,
        f: impl FnOnce(&Tree, &str) -> Result<(), StoreError>,
    ) -> io::Result<Vec<u8>> {
        let name = match self.stored_name(raw, en) {
            Ok(n) => n,
            Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
        };
        Ok(match f(&self.tree, &name) {
            Ok(()) => line(&format!("{tag} OK {what} completed")),
            Err(StoreError::Exists) => {
                line(&format!("{tag} NO [ALREADYEXISTS] Mailbox already exists"))
            }
            Err(StoreError::NotFound) => line(&format!("{tag} NO [NONEXISTENT] No such mailbox")),
            Err(StoreError::Invalid(why)) => {
                line(&format!("{tag} NO [CANNOT] Invalid mailbox name: {why}"))
            }
            Err(StoreError::Refused(why)) => line(&format!("{tag} NO [CANNOT] {why}")),
            Err(StoreError::Io(e)) => {
                log::error!("user {}: {what} {name}: {e}", self.user);
                line(&format!("{tag} NO [SERVERBUG] {what} failed"))
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn select(
        &mut self,
        tag: &str,
        raw: &[u8],
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
        en: &mut Enabled,
        out: &mut dyn Sink,
    ) -> io::Result<Vec<u8>> {
        if qresync.is_some() && !en.qresync {
            return Ok(line(&format!("{tag} BAD QRESYNC is not enabled")));
        }
        if condstore {
            en.condstore = true;
        }
        if self.selected.take().is_some() {
            out.send(b"* OK [CLOSED] Previous mailbox closed\r\n")?;
        }
        let name = match self.stored_name(raw, *en) {
            Ok(n) => n,
            Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
        };
        let folder = match self.tree.open(&name, read_only) {
            Ok(f) => f,
            Err(StoreError::NotFound) | Err(StoreError::Invalid(_)) => {
                return Ok(line(&format!("{tag} NO [NONEXISTENT] No such mailbox")))
            }
            Err(e) => {
                log::error!("user {}: SELECT {name}: {e}", self.user);
                return Ok(line(&format!(
                    "{tag} NO [SERVERBUG] Cannot open the mailbox"
                )));
            }
        };
        let s = Selected::new(folder, name, read_only);
        let f = &s.folder;
        let mut r = Vec::with_capacity(512);
        r.extend(s.flags_lines());
        r.extend(line(&format!("* {} EXISTS", s.exists())));
        if !en.rev2 {
            let recent = f.messages.iter().filter(|m| m.recent).count();
            r.extend(line(&format!("* {recent} RECENT")));
            if let Some(i) = f.messages.iter().position(|m| !m.flags.has(Flag::Seen)) {
                r.extend(line(&format!("* OK [UNSEEN {}] First unseen", i + 1)));
            }
        }
        r.extend(line(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid",
            f.uidvalidity
        )));
        r.extend(line(&format!(
            "* OK [UIDNEXT {}] Predicted next UID",
            f.uidnext
        )));
        r.extend(line(&format!(
            "* OK [HIGHESTMODSEQ {}] Highest",
            f.highest_modseq()
        )));
        if en.rev2 {
            r.extend(b"* LIST () \".\" ");
            r.extend(Self::shown_name(&s.name, *en));
            r.extend(b"\r\n");
        }
        out.send(&r)?;
        if let Some(q) = qresync {
            if q.uidvalidity == f.uidvalidity {
                self.resync(&s, &q, *en, out)?;
            }
        }
        self.selected = Some(s);
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        Ok(line(&format!(
            "{tag} OK [{mode}] {} completed",
            if read_only { "EXAMINE" } else { "SELECT" }
        )))
    }

    /// QRESYNC's catch-up on SELECT: what vanished, and what changed.
    fn resync(&self, s: &Selected, q: &Qresync, en: Enabled, out: &mut dyn Sink) -> io::Result<()> {
        let f = &s.folder;
        let largest = f.uidnext.saturating_sub(1).max(1);
        let known: Option<Vec<(u32, u32)>> = q.known_uids.as_ref().map(|k| k.resolve(largest));
        let in_known = |uid: u32| {
            known
                .as_ref()
                .is_none_or(|k| k.iter().any(|&(a, b)| a <= uid && uid <= b))
        };
        let vanished: Vec<u32> = match f.modlog.expunged_since(q.modseq) {
            Some(v) => v
                .into_iter()
                .filter(|&u| in_known(u) && f.index_of_uid(u).is_none())
                .collect(),
            None => {
                // Forgotten: every UID of the known range not here now.
                let mut v = Vec::new();
                if let Some(k) = &known {
                    for &(a, b) in k {
                        for u in a..=b.min(largest) {
                            if f.index_of_uid(u).is_none() {
                                v.push(u);
                            }
                            if v.len() > 100_000 {
                                break;
                            }
                        }
                    }
                }
                v
            }
        };
        if !vanished.is_empty() {
            out.send(&line(&format!(
                "* VANISHED (EARLIER) {}",
                compress(&vanished)
            )))?;
        }
        let mut r = Vec::new();
        for (i, m) in f.messages.iter().enumerate() {
            if m.modseq > q.modseq && in_known(m.uid) {
                r.extend(line(&format!(
                    "* {} FETCH (UID {} FLAGS {} MODSEQ ({}))",
                    i + 1,
                    m.uid,
                    s.flags_of(i, en.rev2),
                    m.modseq
                )));
                if r.len() > 65536 {
                    out.send(&std::mem::take(&mut r))?;
                }
            }
        }
        out.send(&r)
    }

    #[allow(clippy::too_many_arguments)]
    fn list(
        &mut self,
        tag: &str,
        reference: &[u8],
        patterns: &[Vec<u8>],
        o: &ListOptions,
        lsub: bool,
        en: Enabled,
        out: &mut dyn Sink,
    ) -> io::Result<Vec<u8>> {
        let cmd = if lsub { "LSUB" } else { "LIST" };
        let ok = line(&format!("{tag} OK {cmd} completed"));
        let reference = String::from_utf8_lossy(reference).into_owned();
        let utf8 = en.utf8 || en.rev2;
        if patterns.len() == 1 && patterns[0].is_empty() && !o.extended {
            // The hierarchy delimiter and root.
            return Ok([line(&format!("* {cmd} (\\Noselect) \".\" \"\"")), ok].concat());
        }
        let names = self.tree.list()?;
        let subs = self.tree.subscriptions();
        let pats: Vec<String> = patterns
            .iter()
            .map(|p| {
                let p = String::from_utf8_lossy(p);
                let full = format!("{reference}{p}");
                if utf8 {
                    mutf7::encode(&full)
                } else {
                    full
                }
            })
            .collect();
        // Every name (existing, subscribed, and implied parents) once.
        let mut all: Vec<String> = names.clone();
        for n in names.iter().chain(subs.iter()) {
            let mut p = n.as_str();
            while let Some((parent, _)) = p.rsplit_once(SEPARATOR) {
                if !all.iter().any(|a| a == parent) {
                    all.push(parent.to_string());
                }
                p = parent;
            }
            if subs.contains(n) && !all.contains(n) {
                all.push(n.clone());
            }
        }
        all.sort();
        all.dedup();
        let exists = |n: &str| names.iter().any(|x| x == n);
        let has_children = |n: &str| {
            let prefix = format!("{n}{SEPARATOR}");
            names.iter().any(|x| x.starts_with(&prefix))
        };
        // RECURSIVEMATCH: a parent is listed for a subscribed descendant
        // that the patterns do not match themselves.
        let subscribed_child = |n: &str| {
            let prefix = format!("{n}{SEPARATOR}");
            subs.iter()
                .any(|x| x.starts_with(&prefix) && !pats.iter().any(|p| list_match(p, x)))
        };
        let mut r = Vec::new();
        for n in &all {
            let matched = pats.iter().any(|p| list_match(p, n));
            let is_sub = subs.contains(n);
            let mut child_info = false;
            if o.subscribed && !is_sub {
                // RECURSIVEMATCH (and LSUB's %): a parent of a subscribed
                // folder is listed with CHILDINFO / \Noselect.
                if (o.recursive_match || lsub) && subscribed_child(n) && matched {
                    child_info = true;
                } else {
                    continue;
                }
            }
            if !matched {
                continue;
            }
            let use_attr = special_use(n.rsplit(SEPARATOR).next().unwrap_or(n));
            if o.special_use && use_attr.is_none() {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            let present = exists(n);
            if !present {
                if o.subscribed && !lsub && is_sub {
                    attrs.push("\\NonExistent");
                } else {
                    attrs.push("\\Noselect");
                }
            }
            if lsub && child_info {
                attrs.push("\\Noselect");
            }
            if !lsub {
                if has_children(n) {
                    attrs.push("\\HasChildren");
                } else if present {
                    attrs.push("\\HasNoChildren");
                }
                if (o.subscribed || o.ret_subscribed) && is_sub {
                    attrs.push("\\Subscribed");
                }
                if let Some(u) = use_attr {
                    if present {
                        attrs.push(u);
                    }
                }
            }
            let mut l = format!("* {cmd} ({}) \".\" ", attrs.join(" ")).into_bytes();
            l.extend(Self::shown_name(n, en));
            if child_info && !lsub {
                l.extend(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            l.extend(b"\r\n");
            r.extend(l);
            if let Some(items) = &o.ret_status {
                if present && !lsub {
                    if let Ok(s) = self.status_line(n, items, en) {
                        r.extend(s);
                    }
                }
            }
            if r.len() > 65536 {
                out.send(&std::mem::take(&mut r))?;
            }
        }
        r.extend(ok);
        Ok(r)
    }

    fn status_line(
        &mut self,
        name: &str,
        items: &[String],
        en: Enabled,
    ) -> Result<Vec<u8>, StoreError> {
        let mut vals = Vec::new();
        let calc = |f: &mut Folder, vals: &mut Vec<String>| {
            for i in items {
                let v = match i.as_str() {
                    "MESSAGES" => f.messages.len() as u64,
                    "RECENT" => f.messages.iter().filter(|m| m.recent).count() as u64,
                    "UIDNEXT" => f.uidnext as u64,
                    "UIDVALIDITY" => f.uidvalidity as u64,
                    "UNSEEN" => f
                        .messages
                        .iter()
                        .filter(|m| !m.flags.has(Flag::Seen))
                        .count() as u64,
                    "DELETED" => f
                        .messages
                        .iter()
                        .filter(|m| m.flags.has(Flag::Deleted))
                        .count() as u64,
                    "HIGHESTMODSEQ" => f.highest_modseq(),
                    "APPENDLIMIT" => self.append_limit,
                    "SIZE" => (0..f.messages.len()).map(|i| f.size(i).unwrap_or(0)).sum(),
                    _ => continue,
                };
                vals.push(format!("{i} {v}"));
            }
        };
        match self.selected.as_mut() {
            Some(s) if s.name == name => {
                s.sync()?;
                calc(&mut s.folder, &mut vals)
            }
            _ => {
                let mut f = self.tree.open(name, true)?;
                calc(&mut f, &mut vals)
            }
        }
        let mut l = b"* STATUS ".to_vec();
        l.extend(Self::shown_name(name, en));
        l.extend(format!(" ({})\r\n", vals.join(" ")).as_bytes());
        Ok(l)
    }

    /// Flags from the client, keywords given their indexes in the folder
    /// (added to its list when new). Err: the reply's text.
    fn parse_flags(
        names: &[String],
        folder: &mut Folder,
    ) -> io::Result<Result<Flags, &'static str>> {
        let mut f = Flags::default();
        let mut keywords = Vec::new();
        for n in names {
            if n.starts_with('\\') {
                match Flag::from_name(n) {
                    Some(fl) => f.set(fl, true),
                    None if n.eq_ignore_ascii_case("\\Recent") => {}
                    None => return Ok(Err("Unknown system flag")),
                }
            } else {
                if !store::flags::valid_keyword(n) {
                    return Ok(Err("Invalid keyword"));
                }
                keywords.push(n.clone());
            }
        }
        if !keywords.is_empty() {
            for i in folder.intern_keywords(&keywords)? {
                match i {
                    Some(i) => f.set_keyword(i, true),
                    None => return Ok(Err("Too many keywords in this mailbox")),
                }
            }
        }
        Ok(Ok(f))
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        tag: &str,
        raw: &[u8],
        flags: &[String],
        date: Option<i64>,
        message: &[u8],
        en: Enabled,
        out: &mut dyn Sink,
    ) -> io::Result<Vec<u8>> {
        let name = match self.stored_name(raw, en) {
            Ok(n) => n,
            Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
        };
        if !self.tree.exists(&name) {
            return Ok(line(&format!("{tag} NO [TRYCREATE] No such mailbox")));
        }
        if message.len() as u64 > self.append_limit {
            return Ok(line(&format!("{tag} NO [TOOBIG] Message too large")));
        }
        if message.is_empty() {
            return Ok(line(&format!("{tag} NO Empty message")));
        }
        // Keywords live per folder: the target's list.
        let mut target = match self.selected.as_mut() {
            Some(s) if s.name == name => None,
            _ => Some(
                self.tree
                    .open(&name, true)
                    .map_err(|e| io::Error::other(e.to_string()))?,
            ),
        };
        let folder: &mut Folder = match target.as_mut() {
            Some(f) => f,
            None => &mut self.selected.as_mut().expect("selected").folder,
        };
        let f = match Self::parse_flags(flags, folder)? {
            Ok(x) => x,
            Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
        };
        let mut add = self
            .tree
            .adder(&name)
            .map_err(|e| io::Error::other(e.to_string()))?;
        add.add_bytes(message, f, "", date)?;
        let (validity, uids) = add.finish()?;
        if self.selected.as_ref().is_some_and(|s| s.name == name) {
            let u = self.updates(false, en)?;
            out.send(&u)?;
        }
        Ok(line(&format!(
            "{tag} OK [APPENDUID {validity} {}] APPEND completed",
            uids[0]
        )))
    }
}

#[cfg(test)]
mod tests;
