//! IMAP's dates: `date` (`1-Feb-2024`, SEARCH), `date-time`
//! (`" 1-Feb-2024 10:00:00 +0100"`, APPEND and INTERNALDATE). Pure.

use crate::calendar::{days_from_civil, utc};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month(s: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
}

fn day_month_year(s: &str) -> Option<(i64, u32, u32)> {
    let mut it = s.split('-');
    let d: u32 = it.next()?.trim_start().parse().ok()?;
    let m = month(it.next()?)?;
    let y_s = it.next()?;
    if it.next().is_some() || y_s.len() != 4 {
        return None;
    }
    let y: i64 = y_s.parse().ok()?;
    if !(1..=31).contains(&d) {
        return None;
    }
    Some((y, m, d))
}

/// A SEARCH date, as the start of that day (UTC seconds).
pub fn parse_date(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let (y, m, d) = day_month_year(s)?;
    Some(days_from_civil(y, m, d) * 86400)
}

/// An APPEND date-time, as UTC seconds.
pub fn parse_datetime(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let mut it = s.trim_start().split(' ');
    let (y, mo, d) = day_month_year(it.next()?)?;
    let time = it.next()?;
    let zone = it.next()?;
    if it.next().is_some() {
        return None;
    }
    let t: Vec<u32> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    if t.len() != 3 || t[0] > 23 || t[1] > 59 || t[2] > 60 {
        return None;
    }
    let zb = zone.as_bytes();
    if zb.len() != 5 || !(zb[0] == b'+' || zb[0] == b'-') {
        return None;
    }
    let zh: i64 = zone[1..3].parse().ok()?;
    let zm: i64 = zone[3..5].parse().ok()?;
    let offset = (zh * 3600 + zm * 60) * if zb[0] == b'-' { -1 } else { 1 };
    Some(days_from_civil(y, mo, d) * 86400 + (t[0] * 3600 + t[1] * 60 + t[2]) as i64 - offset)
}

/// INTERNALDATE as IMAP writes it (UTC).
pub fn format_datetime(t: i64) -> String {
    let (y, mo, d, h, mi, s) = utc(t);
    format!(
        "\"{d:02}-{}-{y:04} {h:02}:{mi:02}:{s:02} +0000\"",
        MONTHS[(mo - 1) as usize]
    )
}

/// The start of the (UTC) day of `t`.
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(86400) * 86400
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date(b"1-Jan-1970"), Some(0));
        assert_eq!(parse_date(b"02-feb-2024"), Some(1706832000));
        for bad in [
            &b"32-Jan-2020"[..],
            b"1-Foo-2020",
            b"1-Jan-20",
            b"1 Jan 2020",
            b"",
            b"1-Jan-2020-x",
        ] {
            assert_eq!(parse_date(bad), None);
        }
        assert_eq!(
            parse_datetime(b" 1-Jan-2020 10:00:00 +0100"),
            Some(1577869200)
        );
        assert_eq!(
            parse_datetime(b"01-Jan-2020 10:00:00 -0030"),
            Some(1577874600)
        );
        for bad in [
            &b"1-Jan-2020 25:00:00 +0000"[..],
            b"1-Jan-2020 10:00 +0000",
            b"1-Jan-2020 10:00:00 0000",
            b"1-Jan-2020 10:00:00",
        ] {
            assert_eq!(parse_datetime(bad), None);
        }
        assert_eq!(
            format_datetime(1577869200),
            "\"01-Jan-2020 09:00:00 +0000\""
        );
        assert_eq!(day_of(1577869200), 1577836800);
    }
}
