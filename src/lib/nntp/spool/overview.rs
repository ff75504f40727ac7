//! The overview of a group: one line per article, in article-number order,
//! as OVER sends it (RFC 3977 8.3: number, Subject, From, Date,
//! Message-ID, References, :bytes, :lines, then `Xref:` with its value),
//! TAB-separated, CRLF-ended. OVER streams lines of it without opening a
//! single article; LISTGROUP, LAST and NEXT read its numbers. A range is
//! found by binary search on the file, so a small range of a large group
//! reads a few blocks.
//!
//! Lines are appended under the spool lock in the order the numbers were
//! taken; expire and recovery rewrite the file whole, sorted.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use crate::nntp::command::Range;

/// The fields of OVERVIEW.FMT, in order, after the number.
pub const FORMAT: &[&str] = &[
    "Subject:",
    "From:",
    "Date:",
    "Message-ID:",
    "References:",
    ":bytes",
    ":lines",
    "Xref:full",
];

/// Longest overview line read.
pub const MAX_LINE: usize = 64 * 1024;

/// A value made safe for a TAB-separated line: TAB, CR, LF and NUL become
/// spaces (RFC 3977 8.3.1).
pub fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The overview line of article `number`: its seven values (see
/// `article::overview_fields`) and the Xref value.
pub fn format_line(number: u64, fields: &[String; 7], xref: &str) -> Vec<u8> {
    let mut out = number.to_string();
    for f in fields {
        out.push('\t');
        out.push_str(&clean(f));
    }
    out.push_str("\tXref: ");
    out.push_str(&clean(xref));
    let mut bytes = out.into_bytes();
    bytes.truncate(MAX_LINE - 2);
    bytes.extend_from_slice(b"\r\n");
    bytes
}

/// The article number a line starts with.
pub fn number_of(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|&b| b == b'\t')?;
    let digits = &line[..end];
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Field `i` of a line (0: the number, 1: Subject, ... 8: Xref), without
/// the line end; for Xref, the value after "Xref: ".
pub fn field(line: &[u8], i: usize) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let f = line.split(|&b| b == b'\t').nth(i)?;
    if i == 8 {
        return Some(f.strip_prefix(b"Xref: ").unwrap_or(f));
    }
    Some(f)
}

/// The first number of the line that starts at or after `at`, and where
/// that line starts.
fn line_after(f: &File, at: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    let mut buf = [0u8; 256];
    let mut pos = at;
    // Skip to the start of the next line (unless at the very start).
    if pos > 0 {
        loop {
            if pos >= len {
                return Ok(None);
            }
            let n = f.read_at(&mut buf, pos - 1)?;
            if n == 0 {
                return Ok(None);
            }
            match buf[..n].iter().position(|&b| b == b'\n') {
                Some(p) => {
                    pos = pos - 1 + p as u64 + 1;
                    break;
                }
                None => pos += n as u64 - 1,
            }
        }
    }
    if pos >= len {
        return Ok(None);
    }
    let n = f.read_at(&mut buf, pos)?;
    Ok(number_of(&buf[..n]).map(|num| (num, pos)))
}

/// Where to start reading for numbers at or above `low`: a line start at
/// or before the first such line.
fn seek_point(f: &File, low: u64) -> io::Result<u64> {
    let len = f.metadata()?.len();
    let (mut lo, mut hi) = (0u64, len);
    while hi - lo > 8192 {
        let mid = lo + (hi - lo) / 2;
        match line_after(f, mid, len)? {
            Some((n, start)) if n < low => lo = start,
            _ => hi = mid,
        }
    }
    // `lo` is a line start (0 or one found above).
    Ok(lo)
}

/// Call `each(number, line)` for every line whose number is in `range`
/// (line with its CRLF); stops early when `each` returns false.
pub fn for_range(
    f: &File,
    range: Range,
    mut each: impl FnMut(u64, &[u8]) -> bool,
) -> io::Result<()> {
    if range.is_empty() {
        return Ok(());
    }
    let start = seek_point(f, range.low)?;
    let mut r = BufReader::with_capacity(64 * 1024, f);
    r.seek(SeekFrom::Start(start))?;
    let mut line = Vec::with_capacity(512);
    loop {
        line.clear();
        let n = Read::take(&mut r, MAX_LINE as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            // An overlong or unfinished line: skip it.
            if n as u64 >= MAX_LINE as u64 {
                let mut rest = Vec::new();
                r.read_until(b'\n', &mut rest)?;
            }
            continue;
        }
        let Some(num) = number_of(&line) else {
            continue;
        };
        if num < range.low {
            continue;
        }
        if range.high.is_some_and(|h| num > h) {
            return Ok(());
        }
        if !each(num, &line) {
            return Ok(());
        }
    }
}

/// The line of article `number`, if the overview has it.
pub fn line_of(f: &File, number: u64) -> io::Result<Option<Vec<u8>>> {
    let mut found = None;
    for_range(
        f,
        Range {
            low: number,
            high: Some(number),
        },
        |_, l| {
            found = Some(l.to_vec());
            false
        },
    )?;
    Ok(found)
}

/// The numbers in `range`, in order.
pub fn numbers(f: &File, range: Range) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for_range(f, range, |n, _| {
        out.push(n);
        true
    })?;
    Ok(out)
}

/// The last number below `n` (LAST), if any.
pub fn previous(f: &File, n: u64) -> io::Result<Option<u64>> {
    if n == 0 {
        return Ok(None);
    }
    // Look back in widening windows, so a long gap costs a few reads.
    let mut width = 64u64;
    loop {
        let low = n.saturating_sub(width);
        let found = numbers(
            f,
            Range {
                low,
                high: Some(n - 1),
            },
        )?;
        if let Some(&last) = found.last() {
            return Ok(Some(last));
        }
        if low == 0 {
            return Ok(None);
        }
        width = width.saturating_mul(16);
    }
}

/// The first number above `n` (NEXT), if any.
pub fn next(f: &File, n: u64) -> io::Result<Option<u64>> {
    let mut found = None;
    for_range(
        f,
        Range {
            low: n.saturating_add(1),
            high: None,
        },
        |num, _| {
            found = Some(num);
            false
        },
    )?;
    Ok(found)
}

/// Fuzzing entry point: any bytes as an overview file, searched.
pub fn fuzz_overview(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        let _ = number_of(line);
        for i in 0..10 {
            let _ = field(line, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fields(i: u64) -> [String; 7] {
        [
            format!("subject\t{i}"),
            "a@b".into(),
            "date".into(),
            format!("<{i}@x>"),
            String::new(),
            "100".into(),
            "3".into(),
        ]
    }

    fn file_with(numbers: impl Iterator<Item = u64>) -> File {
        let path = std::env::temp_dir().join(format!(
            "nntp-over-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let mut f = File::create(&path).unwrap();
        for n in numbers {
            f.write_all(&format_line(n, &fields(n), &format!("h g:{n}")))
                .unwrap();
        }
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn lines_and_fields() {
        let l = format_line(5, &fields(5), "h g:5");
        assert_eq!(
            l,
            b"5\tsubject 5\ta@b\tdate\t<5@x>\t\t100\t3\tXref: h g:5\r\n".to_vec()
        );
        assert_eq!(number_of(&l), Some(5));
        assert_eq!(field(&l, 4), Some(&b"<5@x>"[..]));
        assert_eq!(field(&l, 8), Some(&b"h g:5"[..]));
        assert_eq!(field(&l, 9), None);
        assert_eq!(number_of(b"x\t"), None);
        assert_eq!(number_of(b"12"), None);
    }

    #[test]
    fn ranges_in_a_big_file() {
        // Every third number, so that gaps are exercised.
        let f = file_with((1..30_000).step_by(3));
        let r = |low, high| numbers(&f, Range { low, high }).unwrap();
        assert_eq!(r(10, Some(20)), vec![10, 13, 16, 19]);
        assert_eq!(r(29_990, None), vec![29_992, 29_995, 29_998]);
        assert_eq!(r(2, Some(3)), Vec::<u64>::new());
        assert_eq!(r(0, Some(4)), vec![1, 4]);
        assert_eq!(r(5, Some(4)), Vec::<u64>::new());
        assert_eq!(previous(&f, 10).unwrap(), Some(7));
        assert_eq!(previous(&f, 1).unwrap(), None);
        assert_eq!(next(&f, 10).unwrap(), Some(13));
        assert_eq!(next(&f, 29_998).unwrap(), None);
        assert!(line_of(&f, 13).unwrap().unwrap().starts_with(b"13\t"));
        assert!(line_of(&f, 14).unwrap().is_none());
    }

    #[test]
    fn a_long_gap_backwards() {
        let f = file_with([1, 100_000].into_iter());
        assert_eq!(previous(&f, 100_000).unwrap(), Some(1));
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_overview(b"1\ta\tb\n\t\t\n99999999999999999999\tx\n");
    }
}
