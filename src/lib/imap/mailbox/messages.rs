//! The selected state's commands on its messages: EXPUNGE, SEARCH, FETCH,
//! STORE, COPY and MOVE (the folder commands and SELECT are in the parent).

use super::*;

impl Mailboxes {
    pub(super) fn expunge(
        &mut self,
        tag: &str,
        set: Option<&SeqSet>,
        en: Enabled,
        out: &mut dyn Sink,
    ) -> io::Result<Vec<u8>> {
        let s = self.selected.as_mut().expect("checked");
        if s.read_only {
            return Ok(line(&format!("{tag} NO [READ-ONLY] Mailbox is read-only")));
        }
        s.sync()?;
        let allowed: Option<Vec<usize>> =
            set.map(|set| s.resolve(set, true).into_iter().map(|(_, i)| i).collect());
        let del: Vec<usize> = (0..s.folder.messages.len())
            .filter(|&i| s.folder.messages[i].flags.has(Flag::Deleted))
            .filter(|i| allowed.as_ref().is_none_or(|a| a.contains(i)))
            .collect();
        if !del.is_empty() {
            s.folder.expunge(&del)?;
        }
        let u = self.updates(true, en)?;
        out.send(&u)?;
        Ok(line(&format!("{tag} OK EXPUNGE completed")))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: SearchReturn,
        charset: Option<String>,
        key: &SearchKey,
        en: Enabled,
        out: &mut dyn Sink,
    ) -> io::Result<Vec<u8>> {
        if let Some(c) = &charset {
            if !search::charset_ok(c) {
                return Ok(line(&format!(
                    "{tag} NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"
                )));
            }
        }
        let s = self.selected.as_mut().expect("checked");
        s.sync()?;
        let max_seq = s.exists() as u32;
        let max_uid = s.uids().last().copied().unwrap_or(0);
        let mut found: Vec<(u32, u32, u64)> = Vec::new();
        let view: Vec<u32> = s.uids().to_vec();
        let keywords = s.folder.keywords.clone();
        for (i, &u) in view.iter().enumerate() {
            let Some(ix) = s.folder.index_of_uid(u) else {
                continue;
            };
            let m = &s.folder.messages[ix];
            let facts = Facts {
                seq: i as u32 + 1,
                uid: u,
                max_seq,
                max_uid,
                flags: m.flags,
                recent: m.recent,
                modseq: m.modseq,
                keywords: &keywords,
            };
            let mut data = Lazy::new(&mut s.folder, ix);
            if search::matches(key, &facts, &mut data) {
                found.push((i as u32 + 1, u, facts.modseq));
            }
        }
        let nums: Vec<u32> = found.iter().map(|f| if uid { f.1 } else { f.0 }).collect();
        // RFC 7162 3.1.5: the highest modseq of the messages returned (for
        // MIN or MAX alone, of that message).
        let returned: Vec<u64> = if !(ret.extended && !ret.all && !ret.count) {
            found.iter().map(|f| f.2).collect()
        } else {
            let mut v = Vec::new();
            if ret.min {
                v.extend(found.first().map(|f| f.2));
            }
            if ret.max {
                v.extend(found.last().map(|f| f.2));
            }
            v
        };
        let modseq = search::uses_modseq(key).then(|| returned.into_iter().max().unwrap_or(0));
        if ret.extended || en.rev2 {
            let ret = if ret.extended {
                ret
            } else {
                SearchReturn { all: true, ..ret }
            };
            let mut l = format!(
                "* ESEARCH (TAG {})",
                String::from_utf8_lossy(&quote(tag.as_bytes()))
            );
            if uid {
                l.push_str(" UID");
            }
            if !nums.is_empty() {
                if ret.min {
                    l.push_str(&format!(" MIN {}", nums[0]));
                }
                if ret.max {
                    l.push_str(&format!(" MAX {}", nums[nums.len() - 1]));
                }
                if ret.all {
                    l.push_str(&format!(" ALL {}", compress(&nums)));
                }
            }
            if ret.count {
                l.push_str(&format!(" COUNT {}", nums.len()));
            }
            if let Some(m) = modseq.filter(|_| !nums.is_empty()) {
                l.push_str(&format!(" MODSEQ {m}"));
            }
            out.send(&line(&l))?;
        } else {
            let mut l = String::from("* SEARCH");
            for n in &nums {
                l.push(' ');
                l.push_str(&n.to_string());
            }
            if let Some(m) = modseq.filter(|_| !nums.is_empty()) {
                l.push_str(&format!(" (MODSEQ {m})"));
            }
            out.send(&line(&l))?;
        }
        let u = self.updates(uid, en)?;
        out.send(&u)?;
        Ok(line(&format!("{tag} OK SEARCH completed")))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        atts: &[FetchAtt],
        changed_since: Option<u64>,
        vanished: bool,
        en: Enabled,
        out: &mut dyn Sink,
    ) -> io::Result<Vec<u8>> {
        let s = self.selected.as_mut().expect("checked");
        s.folder.forget_vanished();
        if vanished {
            let since = changed_since.unwrap_or(0);
            let largest = s.folder.uidnext.saturating_sub(1).max(1);
            let ranges = set.resolve(largest);
            let v: Vec<u32> = match s.folder.modlog.expunged_since(since) {
                Some(v) => v,
                None => ranges
                    .iter()
                    .flat_map(|&(a, b)| a..=b.min(a.saturating_add(100_000)))
                    .filter(|&u| s.folder.index_of_uid(u).is_none())
                    .collect(),
            };
            let v: Vec<u32> = v
                .into_iter()
                .filter(|&u| ranges.iter().any(|&(a, b)| a <= u && u <= b))
                .collect();
            if !v.is_empty() {
                out.send(&line(&format!("* VANISHED (EARLIER) {}", compress(&v))))?;
            }
        }
        let targets = s.resolve(set, uid);
        let need = fetch::need(atts);
        let structured = fetch::needs_structure(atts);
        let mark_seen = fetch::sets_seen(atts) && !s.read_only;
        let want_modseq = changed_since.is_some();
        let rev2 = en.rev2;
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut failed_cte = false;
        for (seq, ix) in targets {
            if let Some(cs) = changed_since {
                if s.folder.messages[ix].modseq <= cs {
                    continue;
                }
            }
            let mut atts_here: Vec<FetchAtt> = atts.to_vec();
            if mark_seen && !s.folder.messages[ix].flags.has(Flag::Seen) {
                let seen = Flags::default().with(Flag::Seen);
                s.folder.set_flags(&[(ix, FlagChange::Add(seen))])?;
                s.forget_flag_change(s.folder.messages[ix].uid);
                if !atts_here.contains(&FetchAtt::Flags) {
                    atts_here.push(FetchAtt::Flags);
                }
            }
            let (wire, structure) = match need {
                Need::Nothing => (None, None),
                Need::Header => match s.folder.read_header(ix) {
                    Ok(h) => (Some(mime::to_wire(&h)), None),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                },
                Need::Whole => match s.folder.read_message(ix) {
                    Ok(b) => {
                        let w = mime::to_wire(&b);
                        let st = structured.then(|| mime::structure(&w));
                        (Some(w), st)
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                },
            };
            let needs_size = atts.contains(&FetchAtt::Rfc822Size);
            let size = match (&wire, needs_size) {
                (Some(w), true) if need == Need::Whole => w.len() as u64,
                (_, true) => s.folder.size(ix).unwrap_or(0),
                _ => 0,
            };
            let internal_date = if atts.contains(&FetchAtt::InternalDate) {
                s.folder.internal_date(ix).unwrap_or(0)
            } else {
                0
            };
            let flags = s.flags_of(ix, rev2);
            let m = &s.folder.messages[ix];
            let meta = Meta {
                uid: m.uid,
                flags: &flags,
                size,
                internal_date,
                modseq: m.modseq,
            };
            let loaded = wire.as_ref().map(|w| Loaded {
                wire: w,
                structure: structure.as_ref(),
            });
            match fetch::render(seq, &atts_here, &meta, loaded.as_ref(), uid, want_modseq) {
                Ok(r) => buf.extend(r),
                Err(fetch::FetchError::UnknownCte) => failed_cte = true,
            }
            // Handed on in small pieces: `out` decides when they are
            // written (the first at once, so the client starts on it).
            if buf.len() >= 16 * 1024 {
                out.send(&buf)?;
                buf.clear();
            }
        }
        out.send(&buf)?;
        let u = self.updates(uid, en)?;
        out.send(&u)?;
        if failed_cte {
            return Ok(line(&format!(
                "{tag} NO [UNKNOWN-CTE] Cannot decode a part"
            )));
        }
        Ok(line(&format!("{tag} OK FETCH completed")))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn store(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: &[String],
        unchanged_since: Option<u64>,
        en: Enabled,
        out: &mut dyn Sink,
    ) -> io::Result<Vec<u8>> {
        let s = self.selected.as_mut().expect("checked");
        if s.read_only {
            return Ok(line(&format!("{tag} NO [READ-ONLY] Mailbox is read-only")));
        }
        s.sync()?;
        let f = match Self::parse_flags(flags, &mut s.folder)? {
            Ok(x) => x,
            Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
        };
        let change = match mode {
            StoreMode::Replace => FlagChange::Set(f),
            StoreMode::Add => FlagChange::Add(f),
            StoreMode::Remove => FlagChange::Remove(f),
        };
        let targets = s.resolve(set, uid);
        let mut updates = Vec::new();
        let mut modified = Vec::new();
        for &(seq, ix) in &targets {
            let m = &s.folder.messages[ix];
            if unchanged_since.is_some_and(|u| m.modseq > u) {
                modified.push(if uid { m.uid } else { seq as u32 });
                continue;
            }
            updates.push((ix, change));
        }
        let changed = s.folder.set_flags(&updates)?;
        let condstore = en.condstore;
        let mut r = s.keyword_news();
        for &(seq, ix) in &targets {
            let m_uid = s.folder.messages[ix].uid;
            s.forget_flag_change(m_uid);
            if modified.contains(&(if uid { m_uid } else { seq as u32 })) {
                continue;
            }
            let was_changed = changed.contains(&ix);
            if silent && !(condstore && was_changed) {
                continue;
            }
            let mut l = format!("* {seq} FETCH (");
            if uid {
                l.push_str(&format!("UID {m_uid} "));
            }
            if silent {
                l.push_str(&format!("MODSEQ ({}))", s.folder.messages[ix].modseq));
            } else {
                // The change applied (again: it is idempotent), so that a
                // message whose file vanished meanwhile (expunged by
                // another session) is answered as the client asked: it is
                // gone at the next sync anyway.
                let flags = s.flags_changed(ix, change, en.rev2);
                l.push_str(&format!("FLAGS {flags}"));
                if condstore {
                    l.push_str(&format!(" MODSEQ ({})", s.folder.messages[ix].modseq));
                }
                l.push(')');
            }
            r.extend(line(&l));
            if r.len() > 65536 {
                out.send(&std::mem::take(&mut r))?;
            }
        }
        // Messages expunged elsewhere but not yet announced keep their
        // numbers and, in this session's view, take the change (as
        // Dovecot's view does): the client hears the flags it asked for.
        for (seq, u) in s.resolve_ghosts(set, uid) {
            s.change_ghost_flags(u, change);
            if !silent {
                if let Some(f) = s.ghost_flags(u, en.rev2) {
                    r.extend(line(&format!("* {seq} FETCH (UID {u} FLAGS {f})")));
                }
            }
        }
        out.send(&r)?;
        let u = self.updates(uid, en)?;
        out.send(&u)?;
        if !modified.is_empty() {
            modified.sort_unstable();
            return Ok(line(&format!(
                "{tag} OK [MODIFIED {}] Conditional STORE failed",
                compress(&modified)
            )));
        }
        Ok(line(&format!("{tag} OK STORE completed")))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        raw: &[u8],
        moving: bool,
        en: Enabled,
        out: &mut dyn Sink,
    ) -> io::Result<Vec<u8>> {
        let what = if moving { "MOVE" } else { "COPY" };
        let name = match self.stored_name(raw, en) {
            Ok(n) => n,
            Err(e) => return Ok(line(&format!("{tag} NO {e}"))),
        };
        if !self.tree.exists(&name) {
            return Ok(line(&format!("{tag} NO [TRYCREATE] No such mailbox")));
        }
        let s = self.selected.as_mut().expect("checked");
        s.folder.forget_vanished();
        if moving && s.read_only {
            return Ok(line(&format!("{tag} NO [READ-ONLY] Mailbox is read-only")));
        }
        let targets = s.resolve(set, uid);
        if targets.is_empty() {
            if !uid && s.names_expunged(set, uid) {
                return Ok(line(&format!(
                    "{tag} NO [EXPUNGEISSUED] Some messages were expunged"
                )));
            }
            return Ok(line(&format!("{tag} OK {what} completed")));
        }
        let dir = self
            .tree
            .dir(&name)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // Keyword indexes differ between folders: map them by name.
        let same = s.name == name;
        // Keywords of the messages copied, given indexes in the target.
        let used: Vec<(usize, String)> = s
            .folder
            .keywords
            .iter()
            .filter(|(i, _)| {
                targets
                    .iter()
                    .any(|&(_, ix)| s.folder.messages[ix].flags.has_keyword(*i))
            })
            .map(|(i, k)| (i, k.to_string()))
            .collect();
        let names: Vec<String> = used.iter().map(|u| u.1.clone()).collect();
        let (dest_now, idx) = store::folder::intern_keywords(&dir, &names)?;
        let map: HashMap<usize, Option<usize>> = used.iter().map(|u| u.0).zip(idx).collect();
        if same {
            s.folder.keywords = dest_now;
        }
        let mut add = self
            .tree
            .adder(&name)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut src_uids = Vec::new();
        for &(_, ix) in &targets {
            let m = s.folder.messages[ix].clone();
            let mut f = m.flags;
            f.keywords = 0;
            for (i, k) in s.folder.keywords.iter() {
                if m.flags.has_keyword(i) {
                    let _ = k;
                    if let Some(Some(d)) = map.get(&i) {
                        f.set_keyword(*d, true);
                    }
                }
            }
            if s.folder.is_mbox() {
                // No file of its own: the message's bytes.
                let data = s.folder.read_message(ix)?;
                let date = s.folder.internal_date(ix)?;
                add.add_bytes(&data, f, &m.other, Some(date))?;
                src_uids.push(m.uid);
                continue;
            }
            let path = s.folder.path_of(&m);
            match add.add_copy(&path, f, &m.other) {
                Ok(()) => src_uids.push(m.uid),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Renamed meanwhile: find it once more.
                    if s.folder.open_message(ix).is_ok() {
                        let m = s.folder.messages[ix].clone();
                        add.add_copy(&s.folder.path_of(&m), f, &m.other)?;
                        src_uids.push(m.uid);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let (validity, new_uids) = add.finish()?;
        let code = format!(
            "COPYUID {validity} {} {}",
            compress(&src_uids),
            uid_list(&new_uids)
        );
        if moving {
            out.send(&line(&format!("* OK [{code}] Moved")))?;
            let ixs: Vec<usize> = targets.iter().map(|t| t.1).collect();
            s.folder.expunge(&ixs)?;
            let u = self.updates(true, en)?;
            out.send(&u)?;
            return Ok(line(&format!("{tag} OK MOVE completed")));
        }
        if same {
            let u = self.updates(false, en)?;
            out.send(&u)?;
        }
        Ok(line(&format!("{tag} OK [{code}] COPY completed")))
    }
}

/// New UIDs in the order of the source set (COPYUID pairs them by order).
pub(super) fn uid_list(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    if sorted == uids {
        compress(uids)
    } else {
        uids.iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A message's contents, read when a search key first needs them.
struct Lazy<'a> {
    folder: &'a mut Folder,
    index: usize,
    header: Option<Vec<u8>>,
    whole: Option<Vec<u8>>,
}

impl<'a> Lazy<'a> {
    fn new(folder: &'a mut Folder, index: usize) -> Lazy<'a> {
        Lazy {
            folder,
            index,
            header: None,
            whole: None,
        }
    }
}

impl Data for Lazy<'_> {
    fn size(&mut self) -> u64 {
        self.folder.size(self.index).unwrap_or(0)
    }

    fn internal_date(&mut self) -> i64 {
        self.folder.internal_date(self.index).unwrap_or(0)
    }

    fn header(&mut self) -> &[u8] {
        if self.header.is_none() {
            let h = match &self.whole {
                Some(w) => w[..mime::header_len(w)].to_vec(),
                // As stored (LF line ends): the search keys read fields
                // through mime::for_each_field, which takes either end.
                None => self.folder.read_header(self.index).unwrap_or_default(),
            };
            self.header = Some(h);
        }
        self.header.as_deref().unwrap_or_default()
    }

    fn whole(&mut self) -> &[u8] {
        if self.whole.is_none() {
            self.whole = Some(
                self.folder
                    .read_message(self.index)
                    .map(|m| mime::to_wire(&m))
                    .unwrap_or_default(),
            );
        }
        self.whole.as_deref().unwrap_or_default()
    }
}
