//! Folder operations of an mbox tree: each folder a file in the folder
//! directory, its index directory beside the others in `.imap/`.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;

use super::{cclient, check_name, is_inbox, normalize, StoreError, Tree};

impl Tree {
    fn index_dir(&self, name: &str) -> std::path::PathBuf {
        self.root.join(".imap").join(normalize(name))
    }

    pub(super) fn create_mbox(&self, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        if is_inbox(name) || fs::symlink_metadata(self.mbox_file(name)?).is_ok() {
            return Err(StoreError::Exists);
        }
        crate::fs::create_private_dir_all(&self.root)?;
        // A folder made again under an old name starts a new index (a new
        // UIDVALIDITY): the old one may still be there after a crash.
        let _ = fs::remove_dir_all(self.index_dir(name));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.mbox_file(name)?)
        {
            Ok(f) => f.sync_all()?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(StoreError::Exists),
            Err(e) => return Err(e.into()),
        }
        crate::fs::sync_dir(&self.root)?;
        Ok(())
    }

    pub(super) fn delete_mbox(&self, name: &str) -> Result<(), StoreError> {
        if !self.exists(name) {
            return Err(StoreError::NotFound);
        }
        fs::remove_file(self.mbox_file(name)?)?;
        crate::fs::sync_dir(&self.root)?;
        let _ = fs::remove_dir_all(self.index_dir(name));
        Ok(())
    }

    pub(super) fn rename_mbox(&self, from: &str, to: &str) -> Result<(), StoreError> {
        check_name(from)?;
        let target = self.mbox_file(to)?;
        if is_inbox(to) || fs::symlink_metadata(&target).is_ok() {
            return Err(StoreError::Exists);
        }
        if !self.exists(from) {
            return Err(StoreError::NotFound);
        }
        crate::fs::create_private_dir_all(&self.root)?;
        if is_inbox(from) {
            return self.rename_mbox_inbox(&target);
        }
        let (from, to) = (normalize(from), normalize(to));
        let children = self.children_to_move(&from, &to)?;
        let mut moves = vec![(from.clone(), to.clone())];
        for c in children {
            let new = format!("{to}{}", &c[from.len()..]);
            moves.push((c, new));
        }
        for (a, b) in &moves {
            fs::rename(self.mbox_file(a)?, self.mbox_file(b)?)?;
            let _ = fs::remove_dir_all(self.index_dir(b));
            let _ = fs::rename(self.index_dir(a), self.index_dir(b));
        }
        crate::fs::sync_dir(&self.root)?;
        self.rename_subscriptions(&from, &to)
    }

    /// RENAME INBOX: its messages move to the new folder, INBOX stays,
    /// empty (RFC 3501); its index stays too, so that its UIDs go on from
    /// where they were.
    fn rename_mbox_inbox(&self, target: &std::path::Path) -> Result<(), StoreError> {
        let inbox = self.inbox.as_ref().expect("an mbox tree");
        let Some(locked) = cclient::lock(inbox, false)? else {
            return self.create_mbox(&target.file_name().unwrap_or_default().to_string_lossy());
        };
        let mut copy = crate::fs::AsideFile::beside(target, 0o600)?;
        io::copy(&mut &locked.file, &mut copy)?;
        copy.commit(target)?;
        locked.file.set_len(0)?;
        locked.file.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::testutil::TempDir;

    #[test]
    fn create_list_rename_delete() {
        let tmp = TempDir::new("mboxtree");
        let inbox = tmp.0.join("inbox");
        let t = Tree::new_mbox(&inbox, &tmp.0.join("mail"));
        assert_eq!(t.list().unwrap(), vec!["INBOX"]);
        t.create("Sent").unwrap();
        t.create("Work.Old").unwrap();
        assert!(matches!(t.create("Sent"), Err(StoreError::Exists)));
        assert!(matches!(t.create("INBOX"), Err(StoreError::Exists)));
        std::os::unix::fs::symlink("/etc/passwd", tmp.0.join("mail/Evil")).unwrap();
        fs::write(tmp.0.join("mail/Sent.lock"), b"1").unwrap();
        assert!(!t.exists("Evil"));
        assert_eq!(t.list().unwrap(), vec!["INBOX", "Sent", "Work.Old"]);
        t.subscribe("Work", true).unwrap();
        t.create("Work").unwrap();
        t.rename("Work", "Job").unwrap();
        assert_eq!(t.list().unwrap(), vec!["INBOX", "Job", "Job.Old", "Sent"]);
        assert_eq!(t.subscriptions(), vec!["Job"]);
        t.delete("Job").unwrap();
        assert!(matches!(t.delete("Job"), Err(StoreError::NotFound)));
        assert!(matches!(t.delete("INBOX"), Err(StoreError::Refused(_))));
        assert!(t.dir("../x").is_err());
    }

    #[test]
    fn rename_inbox_moves_its_messages_and_keeps_its_uids_going() {
        let tmp = TempDir::new("mboxtree-inbox");
        let inbox = tmp.0.join("inbox");
        let mb = crate::mail::Mailbox::Mbox(inbox.clone());
        for i in 0..2 {
            crate::mail::deliver(&mb, "a@b", &mut format!("S: {i}\n\nx\n").as_bytes()).unwrap();
        }
        let t = Tree::new_mbox(&inbox, &tmp.0.join("mail"));
        let f = t.open("INBOX", false).unwrap();
        assert_eq!(f.messages.len(), 2);
        let validity = f.uidvalidity;
        t.rename("INBOX", "Old").unwrap();
        assert_eq!(t.open("INBOX", true).unwrap().messages.len(), 0);
        let old = t.open("Old", true).unwrap();
        assert_eq!(
            old.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
            [1, 2]
        );
        crate::mail::deliver(&mb, "a@b", &mut &b"S: 3\n\nx\n"[..]).unwrap();
        let f = t.open("INBOX", true).unwrap();
        assert_eq!((f.uidvalidity, f.messages[0].uid), (validity, 3));
    }
}
