//! Adding messages to a folder (APPEND, COPY, MOVE): each put in place
//! whole, then all given UIDs at once under the uidlist's lock.

use super::*;

/// Add messages to a folder (APPEND, COPY, MOVE): each is put in place
/// whole, then all get UIDs at once under the uidlist's lock; durable on
/// return. Returns the folder's UIDVALIDITY and the new UIDs in order.
pub struct Adder {
    dir: PathBuf,
    placed: Vec<String>,
    new_touched: bool,
    cur_touched: bool,
}

impl Adder {
    pub fn new(dir: &Path) -> io::Result<Adder> {
        super::super::create_maildir(dir)?;
        Ok(Adder {
            dir: dir.to_path_buf(),
            placed: Vec::new(),
            new_touched: false,
            cur_touched: false,
        })
    }

    /// A new message from its bytes (any line ends: stored with LF, as
    /// deliveries are), with flags and an internal date.
    pub fn add_bytes(
        &mut self,
        data: &[u8],
        flags: Flags,
        other: &str,
        date: Option<i64>,
    ) -> io::Result<()> {
        let base0 = super::super::unique_name();
        let mut f = AsideFile::create(self.dir.join("tmp").join(&base0), 0o600)?;
        let mut lf = Vec::with_capacity(data.len());
        let mut w = WireSize::new();
        let mut conv = crate::wire::CrlfToLf::new();
        conv.feed(data, &mut lf);
        conv.finish(&mut lf);
        w.feed(&lf);
        f.write_all(&lf)?;
        if let Some(d) = date {
            let t = UNIX_EPOCH + std::time::Duration::from_secs(d.max(0) as u64);
            let _ = f.file().set_modified(t);
        }
        let base = format!("{base0},S={},W={}", lf.len(), w.total());
        self.install(f, base, flags, other)
    }

    /// A copy of another folder's message: a hard link under a new name
    /// when the file system allows, else the bytes copied.
    pub fn add_copy(&mut self, from: &Path, flags: Flags, other: &str) -> io::Result<()> {
        let from_name = from
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = FileName::parse(&from_name);
        let sizes: String = old
            .base
            .split(',')
            .skip(1)
            .filter(|f| f.starts_with("S=") || f.starts_with("W="))
            .map(|f| format!(",{f}"))
            .collect();
        let base = format!("{}{sizes}", super::super::unique_name());
        let name = self.final_name(&base, flags, other);
        let target = self.target(&name, flags);
        match fs::hard_link(from, &target) {
            Ok(()) => {}
            Err(_) => {
                let mut src = crate::mail::open_regular(fs::OpenOptions::new().read(true), from)?;
                let mtime = src.metadata()?.modified().ok();
                let mut f = AsideFile::create(self.dir.join("tmp").join(&base), 0o600)?;
                io::copy(&mut src, &mut f)?;
                if let Some(t) = mtime {
                    let _ = f.file().set_modified(t);
                }
                f.install(&target)?;
            }
        }
        self.mark(flags, base);
        Ok(())
    }

    fn final_name(&self, base: &str, flags: Flags, other: &str) -> String {
        if flags.is_empty() && other.is_empty() {
            base.to_string()
        } else {
            cur_name(base, flags, other)
        }
    }

    fn target(&self, name: &str, flags: Flags) -> PathBuf {
        // A message without flags is new mail (new/); one with flags has
        // been seen by a mail program (cur/).
        let sub = if flags.is_empty() && !name.contains(':') {
            "new"
        } else {
            "cur"
        };
        self.dir.join(sub).join(name)
    }

    fn install(&mut self, f: AsideFile, base: String, flags: Flags, other: &str) -> io::Result<()> {
        let name = self.final_name(&base, flags, other);
        let target = self.target(&name, flags);
        f.install(&target)?;
        self.mark(flags, base);
        Ok(())
    }

    fn mark(&mut self, flags: Flags, base: String) {
        if flags.is_empty() {
            self.new_touched = true;
        } else {
            self.cur_touched = true;
        }
        self.placed.push(base);
    }

    /// Sync the directories and give the UIDs. Returns (UIDVALIDITY, UIDs).
    pub fn finish(self) -> io::Result<(u32, Vec<u32>)> {
        if self.new_touched {
            crate::fs::sync_dir(&self.dir.join("new"))?;
        }
        if self.cur_touched {
            crate::fs::sync_dir(&self.dir.join("cur"))?;
        }
        let mut folder = Folder {
            dir: self.dir.clone(),
            uidvalidity: 0,
            uidnext: 1,
            messages: Vec::new(),
            keywords: Keywords::default(),
            modlog: ModLog::default(),
            gone: Vec::new(),
            relocated: Vec::new(),
            vanished: HashSet::new(),
            relocations: 0,
            header_cache: HeaderCache::default(),
            read_only: true,
            stamps: None,
            keywords_stamp: None,
        };
        let live = list_dirs(&self.dir)?;
        let uids = folder.uids_for(&self.placed, &live)?.0;
        let list: Vec<u32> = self
            .placed
            .iter()
            .map(|b| uids.get(b).copied().unwrap_or(0))
            .collect();
        Ok((folder.uidvalidity, list))
    }
}
