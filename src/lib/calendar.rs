#![forbid(unsafe_code)]
//! Dates in UTC without a time library: seconds since the epoch to the
//! civil calendar and back (H. Hinnant's algorithms), and the few textual
//! forms the protocols use (RFC 5322 headers, mbox From_ lines, ls and MDTM).

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Day names indexed by days since 1970-01-01 (a Thursday) modulo 7.
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC broken-down time: (year, month, day, hour, minute, second).
pub fn utc(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    (
        y,
        mo,
        d,
        (s / 3600) as u32,
        (s / 60 % 60) as u32,
        (s % 60) as u32,
    )
}

fn weekday(t: i64) -> &'static str {
    WEEKDAYS[t.div_euclid(86_400).rem_euclid(7) as usize]
}

/// `Thu, 1 Jan 1970 00:00:00 +0000` (RFC 5322, UTC).
pub fn rfc5322_date(secs: u64) -> String {
    let t = secs as i64;
    let (y, mo, d, h, mi, s) = utc(t);
    let (wd, mon) = (weekday(t), MONTHS[(mo - 1) as usize]);
    format!("{wd}, {d} {mon} {y} {h:02}:{mi:02}:{s:02} +0000")
}

/// `Thu Jan  1 00:00:00 1970` (asctime, UTC: mbox From_ lines).
pub fn asctime(secs: u64) -> String {
    let t = secs as i64;
    let (y, mo, d, h, mi, s) = utc(t);
    let (wd, mon) = (weekday(t), MONTHS[(mo - 1) as usize]);
    format!("{wd} {mon} {d:2} {h:02}:{mi:02}:{s:02} {y}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_leap_days() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(utc(-1), (1969, 12, 31, 23, 59, 59));
        for days in [-800_000, -1, 0, 59, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn rfc5322_dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(
            rfc5322_date(1_795_000_000),
            "Wed, 18 Nov 2026 11:06:40 +0000"
        );
    }

    #[test]
    fn asctime_formats() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_767_225_600), "Thu Jan  1 00:00:00 2026");
        assert_eq!(asctime(951_782_400 + 3723), "Tue Feb 29 01:02:03 2000");
    }
}
