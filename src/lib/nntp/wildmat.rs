//! Wildmats (RFC 3977 4, with INN's `[...]` classes and `\` escapes): a
//! comma-separated list of patterns, each possibly negated with `!`; the
//! last pattern that matches decides. `*` matches any run of characters,
//! `?` one character.
//!
//! The cost is bounded: a pattern list is at most [`MAX_LEN`] bytes and
//! [`MAX_PATTERNS`] patterns, and matching is the iterative star algorithm
//! that keeps one backtrack point per pattern: at most the pattern's length
//! times the subject's, never exponential (`a*a*a*a*b` against a long run
//! of `a` costs the same as `*b`).

/// Longest wildmat accepted (a command line is shorter anyway).
pub const MAX_LEN: usize = 4096;
/// Most comma-separated patterns in one wildmat.
pub const MAX_PATTERNS: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Char(char),
    Any,
    Star,
    /// A class: ranges (single characters as `(c, c)`), negated or not.
    Class(bool, Vec<(char, char)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    negated: bool,
    items: Vec<Item>,
}

/// A parsed wildmat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wildmat {
    patterns: Vec<Pattern>,
}

/// Why a wildmat does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadWildmat(pub &'static str);

impl Wildmat {
    pub fn parse(text: &str) -> Result<Wildmat, BadWildmat> {
        if text.len() > MAX_LEN {
            return Err(BadWildmat("wildmat too long"));
        }
        let mut patterns = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            if patterns.len() >= MAX_PATTERNS {
                return Err(BadWildmat("too many patterns"));
            }
            let negated = chars.next_if_eq(&'!').is_some();
            let mut items = Vec::new();
            while let Some(c) = chars.next() {
                match c {
                    ',' => break,
                    '*' => {
                        // Consecutive stars are one star.
                        if items.last() != Some(&Item::Star) {
                            items.push(Item::Star);
                        }
                    }
                    '?' => items.push(Item::Any),
                    '\\' => match chars.next() {
                        Some(e) => items.push(Item::Char(e)),
                        None => return Err(BadWildmat("trailing backslash")),
                    },
                    '[' => items.push(parse_class(&mut chars)?),
                    c if c.is_control() || c == ' ' => {
                        return Err(BadWildmat("space or control character"))
                    }
                    c => items.push(Item::Char(c)),
                }
            }
            if items.is_empty() {
                return Err(BadWildmat("empty pattern"));
            }
            patterns.push(Pattern { negated, items });
            if chars.peek().is_none() {
                if text.ends_with(',') {
                    return Err(BadWildmat("empty pattern"));
                }
                break;
            }
        }
        Ok(Wildmat { patterns })
    }

    /// The wildmat that matches everything.
    pub fn all() -> Wildmat {
        Wildmat {
            patterns: vec![Pattern {
                negated: false,
                items: vec![Item::Star],
            }],
        }
    }

    /// Whether `subject` matches: the last matching pattern decides.
    pub fn matches(&self, subject: &str) -> bool {
        let chars: Vec<char> = subject.chars().collect();
        for p in self.patterns.iter().rev() {
            if match_items(&p.items, &chars) {
                return !p.negated;
            }
        }
        false
    }
}

fn parse_class(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<Item, BadWildmat> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = match chars.next() {
            None => return Err(BadWildmat("unterminated [")),
            // A ] first in the class is a member.
            Some(']') if !first => break,
            Some('\\') => chars.next().ok_or(BadWildmat("trailing backslash"))?,
            Some(c) => c,
        };
        first = false;
        if chars.peek() == Some(&'-') {
            let mut ahead = chars.clone();
            ahead.next();
            match ahead.peek() {
                Some(&']') | None => ranges.push((c, c)),
                Some(&hi) => {
                    chars.next();
                    chars.next();
                    if hi < c {
                        return Err(BadWildmat("reversed range"));
                    }
                    ranges.push((c, hi));
                }
            }
        } else {
            ranges.push((c, c));
        }
        if ranges.len() > MAX_LEN {
            return Err(BadWildmat("class too long"));
        }
    }
    Ok(Item::Class(negated, ranges))
}

fn item_matches(item: &Item, c: char) -> bool {
    match item {
        Item::Char(x) => *x == c,
        Item::Any => true,
        Item::Class(neg, ranges) => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *neg,
        Item::Star => false,
    }
}

/// The star algorithm with one backtrack point: on a mismatch, go back to
/// the last star and let it take one more character. Each star retry moves
/// the subject position on, so the work is at most items x subject.
fn match_items(items: &[Item], s: &[char]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < items.len() {
            if items[p] == Item::Star {
                star = Some((p, i));
                p += 1;
                continue;
            }
            if item_matches(&items[p], s[i]) {
                p += 1;
                i += 1;
                continue;
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    items[p..].iter().all(|it| *it == Item::Star)
}

/// Fuzzing entry point: any bytes as a wildmat, matched against a few
/// subjects (must neither panic nor take long).
pub fn fuzz_wildmat(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(w) = Wildmat::parse(&text) {
        for s in ["", "comp.lang.rust", &"a".repeat(200), &text] {
            let _ = w.matches(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, s: &str) -> bool {
        Wildmat::parse(pat).unwrap().matches(s)
    }

    #[test]
    fn the_rfc_examples() {
        // RFC 3977 4.4.
        assert!(m("a*", "abc"));
        assert!(!m("a*", "xyz"));
        assert!(m("a*,*b", "xxb"));
        assert!(!m("a*,!*b", "aab"));
        assert!(m("a*,!*b", "abc"));
        assert!(!m("a*,!*b,c*", "xyz"));
        assert!(m("a*,!*b,c*", "cab"));
        assert!(m("*", ""));
        assert!(m("?", "\u{e9}"));
        assert!(!m("?", "ab"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("comp.[a-c]*", "comp.b"));
        assert!(!m("comp.[a-c]*", "comp.d"));
        assert!(m("comp.[^a-c]*", "comp.d"));
        assert!(m("[]x]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\,b", "a,b"));
    }

    #[test]
    fn negation_only_never_matches() {
        assert!(!m("!foo", "bar"));
        assert!(!m("!foo", "foo"));
        assert!(m("*,!foo.*", "bar.x"));
        assert!(!m("*,!foo.*", "foo.x"));
    }

    #[test]
    fn bad_wildmats() {
        for bad in [
            "", ",", "a,", ",a", "a,,b", "!", "[abc", "a\\", "[z-a]", "a b", "a\tb",
        ] {
            assert!(Wildmat::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Wildmat::parse(&"a".repeat(MAX_LEN + 1)).is_err());
        assert!(Wildmat::parse(&vec!["a"; MAX_PATTERNS + 1].join(",")).is_err());
    }

    #[test]
    fn cost_is_bounded() {
        let pat = "a*".repeat(200) + "b";
        let subject = "a".repeat(3000);
        let w = Wildmat::parse(&pat).unwrap();
        // A backtracking matcher would not finish this in our lifetime.
        assert!(!w.matches(&subject));
        assert!(w.matches(&(subject + "b")));
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_wildmat(b"[");
        fuzz_wildmat(b"*\\");
        fuzz_wildmat(&[0xff, b'*', b'[', b'^', b']']);
    }
}
