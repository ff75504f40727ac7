//! `dovecot-uidlist`, version 3, byte for byte as Dovecot writes it, so
//! that a site can move between Dovecot and us without its clients
//! downloading everything again:
//!
//! ```text
//! 3 V1700000000 N43 G0123456789abcdef0123456789abcdef
//! 1 :1700000000.M1P2.host,S=1234,W=1260
//! 2 W2048 :1700000001.M5P2.host
//! ```
//!
//! The header gives the version, UIDVALIDITY, the next UID and the
//! folder's GUID; each record a UID, extension fields (a letter and a
//! value: `W` wire size, `S` size, `G` GUID, `P` POP3 UIDL...) that we keep
//! as they are, and after ` :` the file's base name (without `:2,` flags).
//! Version 1 files (`1 V N` and `UID NAME` lines) are read too. The file is
//! replaced whole (written aside, fsynced, renamed) under Dovecot's dot-lock
//! `dovecot-uidlist.lock`.

use std::io;

/// UIDs stay below 2^31: some clients keep them in signed 32-bit integers.
pub const UID_MAX: u32 = 0x7fff_ffff;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub uid: u32,
    /// Extension fields, letter and value, in their order.
    pub ext: Vec<(u8, String)>,
    pub base: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UidList {
    pub uidvalidity: u32,
    pub next_uid: u32,
    /// 32 hex digits (empty when the file had none).
    pub guid: String,
    /// Header fields we do not use, kept as they were (`letter`, value).
    pub header_ext: Vec<(u8, String)>,
    /// Sorted by UID.
    pub records: Vec<Record>,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("dovecot-uidlist: {what}"),
    )
}

impl UidList {
    /// A new list for a folder created now.
    pub fn new(uidvalidity: u32, guid: String) -> UidList {
        UidList {
            uidvalidity,
            next_uid: 1,
            guid,
            header_ext: Vec::new(),
            records: Vec::new(),
        }
    }

    pub fn parse(data: &[u8]) -> io::Result<UidList> {
        let text = std::str::from_utf8(data).map_err(|_| bad("not UTF-8"))?;
        let mut lines = text.split('\n');
        let header = lines.next().ok_or_else(|| bad("empty"))?;
        let mut fields = header.split(' ');
        let version = fields.next().unwrap_or("");
        let mut list = UidList::new(0, String::new());
        match version {
            "1" => {
                let v = fields.next().and_then(|v| v.parse().ok());
                let n = fields.next().and_then(|n| n.parse().ok());
                let (Some(v), Some(n)) = (v, n) else {
                    return Err(bad("bad version 1 header"));
                };
                list.uidvalidity = v;
                list.next_uid = n;
            }
            "3" => {
                for f in fields.filter(|f| !f.is_empty()) {
                    let (k, v) = f.split_at(1);
                    match k {
                        "V" => list.uidvalidity = v.parse().map_err(|_| bad("bad V"))?,
                        "N" => list.next_uid = v.parse().map_err(|_| bad("bad N"))?,
                        "G" => list.guid = v.to_string(),
                        _ => list.header_ext.push((k.as_bytes()[0], v.to_string())),
                    }
                }
            }
            _ => return Err(bad("unknown version")),
        }
        if list.uidvalidity == 0 {
            return Err(bad("no UIDVALIDITY"));
        }
        let mut last = 0;
        for line in lines.filter(|l| !l.is_empty()) {
            let rec = if version == "1" {
                let (uid, base) = line.split_once(' ').ok_or_else(|| bad("bad record"))?;
                Record {
                    uid: uid.parse().map_err(|_| bad("bad UID"))?,
                    ext: Vec::new(),
                    base: base.to_string(),
                }
            } else {
                let (head, base) = line.split_once(" :").ok_or_else(|| bad("bad record"))?;
                let mut parts = head.split(' ');
                let uid = parts
                    .next()
                    .and_then(|u| u.parse().ok())
                    .ok_or_else(|| bad("bad UID"))?;
                let ext = parts
                    .filter(|p| !p.is_empty())
                    .map(|p| (p.as_bytes()[0], p[1..].to_string()))
                    .collect();
                Record {
                    uid,
                    ext,
                    base: base.to_string(),
                }
            };
            // A base never holds the flags part; one that does came from a
            // writer that stored whole names.
            let base = rec.base.split(':').next().unwrap_or("").to_string();
            if rec.uid <= last || rec.uid == 0 || rec.uid > UID_MAX || base.is_empty() {
                return Err(bad("records out of order"));
            }
            last = rec.uid;
            list.records.push(Record { base, ..rec });
        }
        if list.next_uid <= last {
            list.next_uid = last + 1;
        }
        Ok(list)
    }

    /// The file as Dovecot writes it.
    pub fn render(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.records.len() * 48);
        out.push_str(&format!("3 V{} N{}", self.uidvalidity, self.next_uid));
        if !self.guid.is_empty() {
            out.push_str(&format!(" G{}", self.guid));
        }
        for (k, v) in &self.header_ext {
            out.push(' ');
            out.push(*k as char);
            out.push_str(v);
        }
        out.push('\n');
        for r in &self.records {
            out.push_str(&r.uid.to_string());
            for (k, v) in &r.ext {
                out.push(' ');
                out.push(*k as char);
                out.push_str(v);
            }
            out.push_str(" :");
            out.push_str(&r.base);
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Give the next UID to `base`. None when UIDs are exhausted (the folder
    /// then needs a new UIDVALIDITY).
    pub fn assign(&mut self, base: &str) -> Option<u32> {
        if self.next_uid > UID_MAX {
            return None;
        }
        let uid = self.next_uid;
        self.next_uid += 1;
        self.records.push(Record {
            uid,
            ext: Vec::new(),
            base: base.to_string(),
        });
        Some(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOVECOT: &[u8] = b"3 V1700000000 N5 G0123456789abcdef0123456789abcdef\n\
1 :1700000000.M1P2.host,S=10,W=12\n\
3 W2048 :1700000001.M5P2.host\n\
4 G00ff P000001 :1700000002.M7P2.host,S=1\n";

    #[test]
    fn dovecot_files_round_trip() {
        let l = UidList::parse(DOVECOT).unwrap();
        assert_eq!(l.uidvalidity, 1700000000);
        assert_eq!(l.next_uid, 5);
        assert_eq!(l.records.len(), 3);
        assert_eq!(l.records[1].uid, 3);
        assert_eq!(l.records[1].ext, vec![(b'W', "2048".into())]);
        assert_eq!(l.records[2].base, "1700000002.M7P2.host,S=1");
        assert_eq!(l.render(), DOVECOT);
    }

    #[test]
    fn version_1_and_bad_files() {
        let l = UidList::parse(b"1 99 3\n1 a.b.c\n2 d.e.f:2,S\n").unwrap();
        assert_eq!((l.uidvalidity, l.next_uid), (99, 3));
        assert_eq!(l.records[1].base, "d.e.f");
        for bad in [
            &b""[..],
            b"2 V1 N1\n",
            b"3 N4\n",
            b"3 V1 N4\n2 :a\n1 :b\n",
            b"3 V1 N4\n0 :a\n",
            b"3 V1 N4\nx :a\n",
            b"3 V1 N4\n1 a\n",
            b"3 V1 N4\n1 :\n",
            b"3 V1 N9\n2147483648 :a\n",
        ] {
            assert!(
                UidList::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A next UID behind the records is moved past them.
        assert_eq!(UidList::parse(b"3 V1 N1\n7 :a\n").unwrap().next_uid, 8);
    }

    #[test]
    fn assign_stays_below_2_31() {
        let mut l = UidList::new(1, String::new());
        assert_eq!(l.assign("a"), Some(1));
        assert_eq!(l.render(), b"3 V1 N2\n1 :a\n");
        l.next_uid = UID_MAX;
        assert_eq!(l.assign("b"), Some(UID_MAX));
        assert_eq!(l.assign("c"), None);
    }
}
