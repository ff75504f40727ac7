//! The IMAP grammar's pieces (RFC 9051 section 9, RFC 3501 section 9), read
//! from one whole command as it came over the wire: the lines and, inline,
//! each literal's `{N}` CRLF and N octets. Pure and bounded: the command
//! buffer's size was limited by the reader (see `reader.rs`); here nesting
//! is limited by `MAX_DEPTH` and every number is checked for overflow.

/// Deepest parenthesis nesting accepted (FETCH section lists, SEARCH keys).
pub const MAX_DEPTH: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(pub String);

pub type Result<T> = std::result::Result<T, SyntaxError>;

pub fn err<T>(what: impl Into<String>) -> Result<T> {
    Err(SyntaxError(what.into()))
}

/// A cursor over a command.
pub struct Input<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

fn is_atom_char(c: u8) -> bool {
    c > 0x20 && c < 0x7f && !b"(){ %*\"\\]".contains(&c)
}

fn is_astring_char(c: u8) -> bool {
    is_atom_char(c) || c == b']'
}

impl<'a> Input<'a> {
    pub fn new(b: &'a [u8]) -> Input<'a> {
        Input { b, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.b[self.pos.min(self.b.len())..]
    }

    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, c: u8) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            err(format!("expected '{}'", c as char))
        }
    }

    pub fn sp(&mut self) -> Result<()> {
        self.expect(b' ')
    }

    pub fn end(&self) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            err("unexpected characters at the end")
        }
    }

    /// Case-insensitive keyword, when the next atom is it.
    pub fn eat_word(&mut self, w: &str) -> bool {
        let end = self.pos + w.len();
        if end <= self.b.len()
            && self.b[self.pos..end].eq_ignore_ascii_case(w.as_bytes())
            && self
                .b
                .get(end)
                .is_none_or(|&c| !is_atom_char(c) || c == b'[')
        {
            self.pos = end;
            true
        } else {
            false
        }
    }

    pub fn atom(&mut self) -> Result<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_atom_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return err("expected an atom");
        }
        Ok(std::str::from_utf8(&self.b[start..self.pos]).expect("ASCII"))
    }

    /// An atom that may hold `]` (astring's atom form), or the run of
    /// characters a tag allows.
    fn astring_atom(&mut self) -> Result<&'a [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(is_astring_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return err("expected a string");
        }
        Ok(&self.b[start..self.pos])
    }

    pub fn tag(&mut self) -> Result<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(|c| is_astring_char(c) && c != b'+') {
            self.pos += 1;
        }
        if self.pos == start {
            return err("expected a tag");
        }
        Ok(std::str::from_utf8(&self.b[start..self.pos]).expect("ASCII"))
    }

    pub fn number(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut n: u64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add((c - b'0') as u64))
                .ok_or_else(|| SyntaxError("number too large".into()))?;
            self.pos += 1;
        }
        if self.pos == start {
            return err("expected a number");
        }
        Ok(n)
    }

    pub fn number32(&mut self) -> Result<u32> {
        let n = self.number()?;
        u32::try_from(n).map_err(|_| SyntaxError("number too large".into()))
    }

    pub fn nz_number(&mut self) -> Result<u32> {
        match self.number32()? {
            0 => err("zero is not allowed here"),
            n => Ok(n),
        }
    }

    /// `"quoted"` (with `\"` and `\\`) or a literal `{N}` CRLF octets (also
    /// `{N+}` and the `~{N}` of binary literals).
    pub fn string(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => Ok(self.literal()?.to_vec()),
            Some(b'~') if self.b.get(self.pos + 1) == Some(&b'{') => Ok(self.literal()?.to_vec()),
            _ => err("expected a string"),
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return err("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return err("bad escape in quoted string"),
                    }
                }
                Some(b'\r') | Some(b'\n') | Some(0) => {
                    return err("bad character in quoted string")
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A literal's octets.
    pub fn literal(&mut self) -> Result<&'a [u8]> {
        self.eat(b'~');
        self.expect(b'{')?;
        let n = self.number()?;
        let _ = self.eat(b'+') || self.eat(b'-');
        self.expect(b'}')?;
        self.expect(b'\r')?;
        self.expect(b'\n')?;
        let n = usize::try_from(n).map_err(|_| SyntaxError("literal too large".into()))?;
        if self.b.len() - self.pos < n {
            return err("literal shorter than announced");
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn astring(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            Some(b'~') if self.b.get(self.pos + 1) == Some(&b'{') => self.string(),
            _ => Ok(self.astring_atom()?.to_vec()),
        }
    }

    /// An astring as text (UTF-8 or, when not, an error).
    pub fn astring_text(&mut self) -> Result<String> {
        String::from_utf8(self.astring()?).map_err(|_| SyntaxError("not UTF-8".into()))
    }

    pub fn nstring_or_nil(&mut self) -> Result<Option<Vec<u8>>> {
        if self.eat_word("NIL") {
            Ok(None)
        } else {
            Ok(Some(self.string()?))
        }
    }

    /// LIST's mailbox pattern: an astring whose atom form may hold `%` `*`.
    pub fn list_mailbox(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| is_astring_char(c) || c == b'%' || c == b'*')
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    return err("expected a mailbox pattern");
                }
                Ok(self.b[start..self.pos].to_vec())
            }
        }
    }

    /// A flag: `\Word` or a keyword atom.
    pub fn flag(&mut self) -> Result<String> {
        let bs = self.eat(b'\\');
        if bs && self.eat(b'*') {
            return Ok("\\*".into());
        }
        let a = self.atom()?;
        Ok(if bs { format!("\\{a}") } else { a.to_string() })
    }

    /// `(flag flag ...)`.
    pub fn flag_list(&mut self) -> Result<Vec<String>> {
        self.expect(b'(')?;
        let mut v = Vec::new();
        if self.eat(b')') {
            return Ok(v);
        }
        loop {
            v.push(self.flag()?);
            if self.eat(b')') {
                return Ok(v);
            }
            self.sp()?;
        }
    }

    /// A sequence set; `*` is `u32::MAX`; `$` (a saved result) is refused.
    pub fn sequence_set(&mut self) -> Result<SeqSet> {
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_number()?;
            let b = if self.eat(b':') {
                self.seq_number()?
            } else {
                a
            };
            ranges.push((a.min(b), a.max(b)));
            if ranges.len() > 10_000 {
                return err("sequence set too long");
            }
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SeqSet(ranges))
    }

    fn seq_number(&mut self) -> Result<u32> {
        if self.eat(b'*') {
            Ok(u32::MAX)
        } else {
            // u32::MAX stands for `*`: the largest number a client may
            // write is one less, which means the same (beyond any UID).
            Ok(self.nz_number()?.min(u32::MAX - 1))
        }
    }

    /// Whether the next thing looks like a sequence set.
    pub fn at_sequence_set(&self) -> bool {
        self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'*')
    }
}

/// Ranges `(low, high)`, inclusive; `u32::MAX` stands for `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(u32, u32)>);

impl SeqSet {
    /// Whether `n` is in the set, `*` being `largest`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|&(a, b)| {
            let (a, b) = (star(a, largest), star(b, largest));
            let (a, b) = (a.min(b), a.max(b));
            a <= n && n <= b
        })
    }

    /// The set resolved against `largest` (for `*`), as sorted, merged
    /// ranges.
    pub fn resolve(&self, largest: u32) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = self
            .0
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (star(a, largest), star(b, largest));
                (a.min(b), a.max(b))
            })
            .collect();
        v.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
                _ => out.push((a, b)),
            }
        }
        out
    }
}

fn star(n: u32, largest: u32) -> u32 {
    if n == u32::MAX {
        largest
    } else {
        n
    }
}

/// A sequence set written out (`1:3,5`), from sorted numbers.
pub fn compress(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A string as IMAP sends it: an atom-safe quoted string, else a literal.
pub fn quote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

/// `quote`, appended to `out`.
pub fn quote_into(out: &mut Vec<u8>, s: &[u8]) {
    let plain = s.len() < 1024 && s.iter().all(|&c| c >= 0x20 && c != 0x7f && c < 0x80);
    if plain {
        out.push(b'"');
        for &c in s {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// `nstring`, appended to `out`.
pub fn nstring_into(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => quote_into(out, s),
    }
}

pub fn literal(s: &[u8]) -> Vec<u8> {
    let mut out = format!("{{{}}}\r\n", s.len()).into_bytes();
    out.extend_from_slice(s);
    out
}

/// NIL or a string.
pub fn nstring(s: Option<&[u8]>) -> Vec<u8> {
    match s {
        None => b"NIL".to_vec(),
        Some(s) => quote(s),
    }
}

/// A mailbox name or other astring: an atom when it can be one.
pub fn astring(s: &str) -> Vec<u8> {
    if !s.is_empty() && s.bytes().all(is_astring_char) && !s.eq_ignore_ascii_case("NIL") {
        s.as_bytes().to_vec()
    } else {
        quote(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut i = Input::new(b"\"a \\\"b\\\\\" {3}\r\nxyz atom] NIL");
        assert_eq!(i.astring().unwrap(), b"a \"b\\");
        i.sp().unwrap();
        assert_eq!(i.astring().unwrap(), b"xyz");
        i.sp().unwrap();
        assert_eq!(i.astring().unwrap(), b"atom]");
        i.sp().unwrap();
        assert_eq!(i.nstring_or_nil().unwrap(), None);
        i.end().unwrap();
        for bad in [
            &b"\"abc"[..],
            b"{5}\r\nab",
            b"{3}xyz",
            b"\"a\\b\"",
            b"{99999999999999999999}\r\n",
            b"\"a\rb\"",
        ] {
            assert!(Input::new(bad).astring().is_err(), "{bad:?}");
        }
        assert_eq!(Input::new(b"{2+}\r\nab").astring().unwrap(), b"ab");
        assert_eq!(Input::new(b"~{2}\r\n\0b").string().unwrap(), b"\0b");
    }

    #[test]
    fn sequence_sets() {
        let s = Input::new(b"1:3,7,*,10:8").sequence_set().unwrap();
        assert_eq!(s.0, vec![(1, 3), (7, 7), (u32::MAX, u32::MAX), (8, 10)]);
        assert!(s.contains(20, 20) && !s.contains(5, 20) && s.contains(9, 20));
        assert_eq!(s.resolve(9), vec![(1, 3), (7, 10)]);
        // `*` below the other end (`5:*` on a mailbox of 3).
        assert_eq!(
            Input::new(b"5:*").sequence_set().unwrap().resolve(3),
            vec![(3, 5)]
        );
        for bad in [&b""[..], b"0", b"1:", b",1", b"a", b"4294967296"] {
            assert!(
                Input::new(bad).sequence_set().is_err() || !Input::new(bad).at_end(),
                "{bad:?}"
            );
        }
        assert!(Input::new(b"0").sequence_set().is_err());
        assert_eq!(compress(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
    }

    #[test]
    fn words_numbers_flags() {
        let mut i = Input::new(b"FETCH 12 (\\Seen $Junk \\*)");
        assert!(!i.eat_word("FETC"));
        assert!(i.eat_word("fetch"));
        i.sp().unwrap();
        assert_eq!(i.number().unwrap(), 12);
        i.sp().unwrap();
        assert_eq!(i.flag_list().unwrap(), vec!["\\Seen", "$Junk", "\\*"]);
        assert!(Input::new(b"99999999999999999999999").number().is_err());
        assert_eq!(quote(b"a\"b"), b"\"a\\\"b\"");
        assert_eq!(quote("é".as_bytes()), b"{2}\r\n\xc3\xa9");
        assert_eq!(astring("INBOX"), b"INBOX");
        assert_eq!(astring("a b"), b"\"a b\"");
        assert_eq!(astring("NIL"), b"\"NIL\"");
    }
}
