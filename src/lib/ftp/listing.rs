//! Directory listings as text: `ls -l` lines (LIST), MLSD/MLST facts
//! (RFC 3659), MDTM times, and the glob patterns NLST and LIST accept.
//! Pure functions of metadata values; times are UTC.

use crate::calendar::{days_from_civil, utc, MONTHS};

/// What a listing line needs to know about one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// st_mode: type and permission bits.
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub dev: u64,
    pub ino: u64,
    /// For a symbolic link: where it points.
    pub link_target: Option<String>,
}

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    pub fn is_link(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// `drwxr-xr-x`, with setuid, setgid and sticky bits as ls shows them.
pub fn mode_string(mode: u32) -> String {
    let t = match mode & S_IFMT {
        S_IFDIR => 'd',
        S_IFLNK => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special = |x: u32, sp: u32, set: char, unset: char| match (mode & x != 0, mode & sp != 0) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

/// `YYYYMMDDHHMMSS` (MDTM and the MLSx `modify` fact).
pub fn timeval(t: i64) -> String {
    let (y, mo, d, h, mi, s) = utc(t);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// `YYYYMMDDHHMMSS[.fff]` (UTC) to seconds since the epoch; fractions are
/// dropped.
pub fn parse_timeval(s: &str) -> Option<i64> {
    let s = s.split_once('.').map(|(a, _)| a).unwrap_or(s);
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| s[a..b].parse::<u32>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0, 4)?,
        n(4, 6)?,
        n(6, 8)?,
        n(8, 10)?,
        n(10, 12)?,
        n(12, 14)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, mo, d);
    Some(days * 86_400 + (h * 3600 + mi * 60 + se) as i64)
}

/// `Mmm dd HH:MM` within six months of `now`, else `Mmm dd  YYYY`.
pub fn ls_time(t: i64, now: i64) -> String {
    let (y, mo, d, h, mi, _) = utc(t);
    let month = MONTHS[(mo - 1) as usize];
    const HALF_YEAR: i64 = 182 * 86_400;
    if t > now - HALF_YEAR && t <= now + 3600 {
        format!("{month} {d:>2} {h:02}:{mi:02}")
    } else {
        format!("{month} {d:>2}  {y}")
    }
}

/// One `ls -l` line, without its line ending.
pub fn ls_line(e: &Entry, owner: &str, group: &str, now: i64) -> String {
    let mut line = format!(
        "{} {:>4} {:<8} {:<8} {:>12} {} {}",
        mode_string(e.mode),
        e.nlink,
        owner,
        group,
        e.size,
        ls_time(e.mtime, now),
        e.name
    );
    if let Some(t) = &e.link_target {
        line.push_str(" -> ");
        line.push_str(t);
    }
    line
}

/// The facts MLST offers, in FEAT order.
pub const FACTS: &[&str] = &["type", "size", "modify", "perm", "unique"];

/// The `perm` fact: what this session may do with the entry. `writable` is
/// whether the session may write the entry itself, `dir_writable` whether it
/// may write the directory holding it (delete, rename).
pub fn perm_fact(e: &Entry, readable: bool, writable: bool, dir_writable: bool) -> String {
    let mut p = String::new();
    if e.is_dir() {
        if writable {
            p.push_str("cmp");
        }
        if readable {
            p.push_str("el");
        }
    } else {
        if writable {
            p.push_str("aw");
        }
        if readable {
            p.push('r');
        }
    }
    if dir_writable {
        p.push_str("df");
    }
    p
}

/// `fact=value;...; name` for MLSD lines and the MLST reply. `kind`
/// overrides the type fact (`cdir` for MLST of a directory).
pub fn mlsx_line(e: &Entry, facts: &[String], perm: &str, kind: Option<&str>) -> String {
    let mut out = String::new();
    for f in facts {
        match f.as_str() {
            "type" => {
                let t = kind.unwrap_or(if e.is_dir() {
                    "dir"
                } else if e.is_file() {
                    "file"
                } else if e.is_link() {
                    "OS.unix=symlink"
                } else {
                    "OS.unix=special"
                });
                out.push_str(&format!("type={t};"));
            }
            "size" if !e.is_dir() => out.push_str(&format!("size={};", e.size)),
            "modify" => out.push_str(&format!("modify={};", timeval(e.mtime))),
            "perm" => out.push_str(&format!("perm={perm};")),
            "unique" => out.push_str(&format!("unique={:x}U{:x};", e.dev, e.ino)),
            _ => {}
        }
    }
    out.push(' ');
    out.push_str(&e.name);
    out
}

/// Whether a path component has glob characters.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Shell-style match of `name` against `pat` (`*`, `?`, `[abc]`, `[a-z]`,
/// `[!x]`). A leading dot must be matched explicitly.
pub fn glob_match(pat: &str, name: &str) -> bool {
    if name.starts_with('.') && !pat.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    // Iterative with one backtrack point for the last '*'.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, len)) = class(&p[pi..], n[ni]) {
                        if matched {
                            pi += len;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A `[...]` class at the start of `p`: (matches c, length of the class).
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, mode: u32, size: u64, mtime: i64) -> Entry {
        Entry {
            name: name.into(),
            mode,
            nlink: 1,
            uid: 1000,
            gid: 1000,
            size,
            mtime,
            dev: 0x803,
            ino: 0x1234,
            link_target: None,
        }
    }

    // 2026-11-22 10:17:21 UTC
    const NOW: i64 = 1_795_342_641;

    #[test]
    fn modes() {
        assert_eq!(mode_string(0o100644), "-rw-r--r--");
        assert_eq!(mode_string(0o040755), "drwxr-xr-x");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x");
        assert_eq!(mode_string(0o102644), "-rw-r-Sr--");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o041776), "drwxrwxrwT");
        assert_eq!(mode_string(0o010600), "prw-------");
        assert_eq!(mode_string(0o020620), "crw--w----");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc(NOW), (2026, 11, 22, 10, 17, 21));
        assert_eq!(utc(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(utc(-1), (1969, 12, 31, 23, 59, 59));
        assert_eq!(timeval(NOW), "20261122101721");
        assert_eq!(parse_timeval("20261122101721"), Some(NOW));
        assert_eq!(parse_timeval("20261122101721.123"), Some(NOW));
        assert_eq!(parse_timeval("20000229000000"), Some(951_782_400));
        assert_eq!(parse_timeval("19700101000000"), Some(0));
        assert_eq!(parse_timeval("2026112210172"), None);
        assert_eq!(parse_timeval("20261322101721"), None);
        assert_eq!(parse_timeval("2026112210172x"), None);
    }

    #[test]
    fn recent_and_old_times() {
        assert_eq!(ls_time(NOW - 60, NOW), "Nov 22 10:16");
        assert_eq!(ls_time(NOW - 200 * 86_400, NOW), "May  6  2026");
        assert_eq!(ls_time(NOW + 86_400 * 30, NOW), "Dec 22  2026");
        assert_eq!(ls_time(0, NOW), "Jan  1  1970");
    }

    #[test]
    fn ls_lines() {
        let f = file("hello.txt", 0o100644, 1234, NOW - 3600);
        assert_eq!(
            ls_line(&f, "demo", "users", NOW),
            "-rw-r--r--    1 demo     users            1234 Nov 22 09:17 hello.txt"
        );
        let mut l = file("link", 0o120777, 4, NOW - 400 * 86_400);
        l.link_target = Some("target".into());
        assert_eq!(
            ls_line(&l, "1000", "1000", NOW),
            "lrwxrwxrwx    1 1000     1000                4 Oct 18  2025 link -> target"
        );
        let f = file("a b", 0o100600, 0, NOW);
        assert!(ls_line(&f, "x", "y", NOW).ends_with(" a b"));
    }

    #[test]
    fn mlsx() {
        let facts: Vec<String> = FACTS.iter().map(|s| s.to_string()).collect();
        let f = file("f.bin", 0o100644, 10, NOW);
        assert_eq!(
            mlsx_line(&f, &facts, "adfrw", None),
            "type=file;size=10;modify=20261122101721;perm=adfrw;unique=803U1234; f.bin"
        );
        let d = file("dir", 0o040755, 4096, NOW);
        assert_eq!(
            mlsx_line(&d, &facts[..1], "el", Some("cdir")),
            "type=cdir; dir"
        );
        assert!(mlsx_line(&d, &facts, "el", None).starts_with("type=dir;modify="));
        assert_eq!(perm_fact(&f, true, true, true), "awrdf");
        assert_eq!(perm_fact(&f, true, false, false), "r");
        assert_eq!(perm_fact(&d, true, true, false), "cmpel");
        assert_eq!(perm_fact(&d, false, false, false), "");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.gz"));
        assert!(glob_match("*", "x"));
        assert!(!glob_match("*", ".hidden"));
        assert!(glob_match(".*", ".hidden"));
        assert!(glob_match("f?le", "file"));
        assert!(glob_match("[a-c]*", "beta"));
        assert!(!glob_match("[!a-c]*", "beta"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("[", "["));
        assert!(glob_match("**", ""));
        assert!(is_glob("*.c") && !is_glob("plain"));
    }
}
