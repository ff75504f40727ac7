//! Message flags as the store keeps them: the system flags of IMAP and up
//! to 26 keywords, in a Maildir file name's info part (`:2,` then the flag
//! letters in ASCII order, keywords as `a`..`z` by their index in the
//! folder's `dovecot-keywords`), as Dovecot and the Maildir convention do.

use std::fmt;

/// One of IMAP's system flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
}

impl Flag {
    pub const ALL: [Flag; 5] = [
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ];

    fn bit(self) -> u8 {
        match self {
            Flag::Seen => 1,
            Flag::Answered => 2,
            Flag::Flagged => 4,
            Flag::Deleted => 8,
            Flag::Draft => 16,
        }
    }

    /// The Maildir info letter.
    pub fn letter(self) -> u8 {
        match self {
            Flag::Seen => b'S',
            Flag::Answered => b'R',
            Flag::Flagged => b'F',
            Flag::Deleted => b'T',
            Flag::Draft => b'D',
        }
    }

    /// The IMAP name (`\Seen`).
    pub fn name(self) -> &'static str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
        }
    }

    /// A system flag by its IMAP name, any case.
    pub fn from_name(name: &str) -> Option<Flag> {
        Flag::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

/// The system flags of a message, and its keywords as a bit set over the
/// folder's keyword list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    system: u8,
    pub keywords: u32,
}

impl Flags {
    pub fn has(&self, f: Flag) -> bool {
        self.system & f.bit() != 0
    }

    pub fn set(&mut self, f: Flag, on: bool) {
        if on {
            self.system |= f.bit();
        } else {
            self.system &= !f.bit();
        }
    }

    pub fn with(mut self, f: Flag) -> Flags {
        self.set(f, true);
        self
    }

    pub fn has_keyword(&self, index: usize) -> bool {
        index < 26 && self.keywords & (1 << index) != 0
    }

    pub fn set_keyword(&mut self, index: usize, on: bool) {
        if index < 26 {
            if on {
                self.keywords |= 1 << index;
            } else {
                self.keywords &= !(1 << index);
            }
        }
    }

    /// Add (`on`) or remove every flag of `other`.
    pub fn apply(&mut self, other: Flags, on: bool) {
        if on {
            self.system |= other.system;
            self.keywords |= other.keywords;
        } else {
            self.system &= !other.system;
            self.keywords &= !other.keywords;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.system == 0 && self.keywords == 0
    }
}

/// The parts of a Maildir file name: the base (the unique name with its
/// `,S=`/`,W=` fields: what dovecot-uidlist records) and the info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName<'a> {
    pub base: &'a str,
    /// The letters after `:2,` (None: no info, or one of another version).
    pub letters: Option<&'a str>,
}

impl<'a> FileName<'a> {
    pub fn parse(name: &'a str) -> FileName<'a> {
        match name.split_once(':') {
            Some((base, info)) => FileName {
                base,
                letters: info.strip_prefix("2,"),
            },
            None => FileName {
                base: name,
                letters: None,
            },
        }
    }

    /// The flags the letters stand for, and the letters we do not map
    /// (`P`, passed; anything else a mail reader set), kept on rewrite.
    pub fn flags(&self) -> (Flags, String) {
        let mut f = Flags::default();
        let mut other = String::new();
        for c in self.letters.unwrap_or("").bytes() {
            match c {
                b'a'..=b'z' => f.set_keyword((c - b'a') as usize, true),
                _ => match Flag::ALL.into_iter().find(|fl| fl.letter() == c) {
                    Some(fl) => f.set(fl, true),
                    None if c.is_ascii_graphic() && c != b',' && c != b'/' => other.push(c as char),
                    None => {}
                },
            }
        }
        (f, other)
    }

    /// The `,W=` (wire size) and `,S=` (size on disk) fields of the base.
    pub fn sizes(&self) -> (Option<u64>, Option<u64>) {
        let mut w = None;
        let mut s = None;
        for field in self.base.split(',').skip(1) {
            if let Some(v) = field.strip_prefix("W=") {
                w = v.parse().ok();
            } else if let Some(v) = field.strip_prefix("S=") {
                s = v.parse().ok();
            }
        }
        (w, s)
    }
}

/// A file name in cur/: the base, `:2,` and the letters in ASCII order
/// (system flags, letters kept from before, then keywords).
pub fn cur_name(base: &str, flags: Flags, other: &str) -> String {
    let mut letters: Vec<u8> = Flag::ALL
        .into_iter()
        .filter(|f| flags.has(*f))
        .map(|f| f.letter())
        .collect();
    letters.extend(other.bytes());
    for i in 0..26 {
        if flags.has_keyword(i) {
            letters.push(b'a' + i as u8);
        }
    }
    letters.sort_unstable();
    letters.dedup();
    format!("{base}:2,{}", String::from_utf8_lossy(&letters))
}

/// A folder's keywords (`dovecot-keywords`: lines `INDEX NAME`), at most 26
/// (one Maildir letter each).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keywords {
    names: Vec<Option<String>>,
}

impl Keywords {
    pub fn parse(text: &[u8]) -> Keywords {
        let mut k = Keywords::default();
        for line in String::from_utf8_lossy(text).lines() {
            let Some((i, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok(i) = i.parse::<usize>() else { continue };
            if i >= 26 || !valid_keyword(name) {
                continue;
            }
            if k.names.len() <= i {
                k.names.resize(i + 1, None);
            }
            k.names[i] = Some(name.to_string());
        }
        k
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = String::new();
        for (i, n) in self.names.iter().enumerate() {
            if let Some(n) = n {
                out.push_str(&format!("{i} {n}\n"));
            }
        }
        out.into_bytes()
    }

    /// The index of a keyword, any case (IMAP keywords are case-insensitive).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }

    /// The index of a keyword, added when new; None when all 26 are taken.
    pub fn intern(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.find(name) {
            return Some(i);
        }
        if let Some(i) = self.names.iter().position(|n| n.is_none()) {
            self.names[i] = Some(name.to_string());
            return Some(i);
        }
        if self.names.len() < 26 {
            self.names.push(Some(name.to_string()));
            return Some(self.names.len() - 1);
        }
        None
    }

    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).and_then(|n| n.as_deref())
    }

    /// Every keyword with its index.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str)> {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_deref().map(|n| (i, n)))
    }

    pub fn is_full(&self) -> bool {
        self.names.len() >= 26 && self.names.iter().all(|n| n.is_some())
    }
}

/// An IMAP keyword: an atom without `\` and the list/quote specials.
pub fn valid_keyword(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = FileName::parse("123.M1P2.host,S=10,W=12:2,FPSac");
        assert_eq!(n.base, "123.M1P2.host,S=10,W=12");
        assert_eq!(n.sizes(), (Some(12), Some(10)));
        let (f, other) = n.flags();
        assert!(f.has(Flag::Flagged) && f.has(Flag::Seen) && !f.has(Flag::Deleted));
        assert!(f.has_keyword(0) && !f.has_keyword(1) && f.has_keyword(2));
        assert_eq!(other, "P");
        assert_eq!(
            cur_name(n.base, f, &other),
            "123.M1P2.host,S=10,W=12:2,FPSac"
        );
        let plain = FileName::parse("1.x.y");
        assert_eq!(plain.letters, None);
        assert_eq!(plain.flags().0, Flags::default());
        assert_eq!(
            cur_name(
                "1.x.y",
                Flags::default().with(Flag::Draft).with(Flag::Deleted),
                ""
            ),
            "1.x.y:2,DT"
        );
        // An info of another version keeps no letters.
        assert_eq!(FileName::parse("1.x:1,abc").letters, None);
    }

    #[test]
    fn keywords_file() {
        let mut k = Keywords::parse(b"0 $Forwarded\n2 Junk\nbad line\n30 Far\n1 bad\\kw\n");
        assert_eq!(k.find("$forwarded"), Some(0));
        assert_eq!(k.find("junk"), Some(2));
        assert_eq!(k.name(1), None);
        assert_eq!(k.intern("New"), Some(1));
        assert_eq!(k.intern("Other"), Some(3));
        assert_eq!(k.render(), b"0 $Forwarded\n1 New\n2 Junk\n3 Other\n");
        for i in 4..26 {
            assert_eq!(k.intern(&format!("k{i}")), Some(i));
        }
        assert!(k.is_full());
        assert_eq!(k.intern("one-too-many"), None);
        assert!(!valid_keyword("a b") && !valid_keyword("\\Seen") && valid_keyword("$Label1"));
        assert_eq!(Flag::from_name("\\SEEN"), Some(Flag::Seen));
    }
}
