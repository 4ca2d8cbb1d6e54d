//! Timestamps: RFC 3339 formatting and parsing, HTTP dates (for
//! `Retry-After`) and UTC day numbers (the profile's buckets). Times are
//! milliseconds since the Unix epoch as `f64`, like `Date.now()`.

/// Milliseconds in a day.
pub const DAY_MS: f64 = 86_400_000.0;

/// A source of the current time. The browser adapter reads `Date.now()`;
/// tests use a fake.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> f64;
}

/// The UTC day number (days since 1970-01-01) of a time.
pub fn day_number(ms: f64) -> i64 {
    (ms / DAY_MS).floor() as i64
}

/// Formats a time as RFC 3339 in UTC with milliseconds, as
/// `Date.prototype.toISOString` does: `2026-11-23T03:48:52.123Z`.
pub fn rfc3339(ms: f64) -> String {
    let mut out = String::with_capacity(24);
    write_rfc3339(&mut out, ms);
    out
}

/// Appends the RFC 3339 form of `ms` to `out`.
pub fn write_rfc3339(out: &mut String, ms: f64) {
    let ms = if ms.is_finite() { ms.floor() as i64 } else { 0 };
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    push_padded(out, y, 4);
    out.push('-');
    push_padded(out, m, 2);
    out.push('-');
    push_padded(out, d, 2);
    out.push('T');
    push_padded(out, h, 2);
    out.push(':');
    push_padded(out, min, 2);
    out.push(':');
    push_padded(out, s, 2);
    out.push('.');
    push_padded(out, milli, 3);
    out.push('Z');
}

fn push_padded(out: &mut String, value: i64, width: usize) {
    // Small and allocation-free: this runs on every event.
    let mut digits = [b'0'; 20];
    let mut v = value.unsigned_abs();
    let mut n = 0;
    loop {
        if let Some(slot) = digits.get_mut(19 - n) {
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        n += 1;
        if v == 0 || n == 20 {
            break;
        }
    }
    if value < 0 {
        out.push('-');
    }
    for _ in n..width {
        out.push('0');
    }
    for &b in digits.get(20 - n..).unwrap_or_default() {
        out.push(b as char);
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn number(bytes: &[u8], range: std::ops::Range<usize>) -> Option<i64> {
    let digits = bytes.get(range)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
    )
}

fn valid_date(y: i64, m: i64, d: i64, h: i64, min: i64, s: i64) -> bool {
    let month_days = [
        31,
        28 + i64::from(is_leap(y)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    (1..=12).contains(&m)
        && d >= 1
        && month_days
            .get((m - 1) as usize)
            .is_some_and(|&max| d <= max)
        && h < 24
        && min < 60
        && s < 61
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Parses an RFC 3339 date-time (`2026-11-23T03:48:52.123Z`,
/// `...+01:00`, lower-case `t`/`z`, or a space for `T`) into milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    if b.get(16) != Some(&b':') {
        return None;
    }
    let (y, m, d) = (number(b, 0..4)?, number(b, 5..7)?, number(b, 8..10)?);
    let (h, min, s) = (number(b, 11..13)?, number(b, 14..16)?, number(b, 17..19)?);
    if !valid_date(y, m, d, h, min, s) {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0.0;
    if b.get(pos) == Some(&b'.') {
        let start = pos + 1;
        pos = start;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        if pos == start {
            return None;
        }
        // Milliseconds from the first three digits; finer digits drop.
        millis = (start..start + 3)
            .map(|i| {
                b.get(i)
                    .filter(|_| i < pos)
                    .map_or(0, |d| i64::from(d - b'0'))
            })
            .fold(0i64, |acc, d| acc * 10 + d) as f64;
    }
    let offset_min = match b.get(pos) {
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if pos + 6 == b.len() && b.get(pos + 3) == Some(&b':') => {
            let oh = number(b, pos + 1..pos + 3)?;
            let om = number(b, pos + 4..pos + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let total = oh * 60 + om;
            if *sign == b'+' {
                total
            } else {
                -total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, m, d);
    let secs = days * 86_400 + h * 3600 + min * 60 + s.min(59) - offset_min * 60;
    Some(secs as f64 * 1000.0 + millis)
}

/// Parses an HTTP date in its preferred form (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`) into milliseconds.
pub fn parse_http_date(text: &str) -> Option<f64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_weekday, day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    if *zone != "GMT" && *zone != "UTC" {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS
        .iter()
        .position(|name| name.eq_ignore_ascii_case(month))? as i64
        + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let t = time.as_bytes();
    if t.len() != 8 || t.get(2) != Some(&b':') || t.get(5) != Some(&b':') {
        return None;
    }
    let (h, min, s) = (number(t, 0..2)?, number(t, 3..5)?, number(t, 6..8)?);
    if !valid_date(y, m, d, h, min, s) {
        return None;
    }
    Some(((days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60 + s) * 1000) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_to_iso_string() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_405_732_123.0), "2026-11-23T03:48:52.123Z");
        assert_eq!(rfc3339(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1.0), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for ms in [
            0.0,
            1_795_405_732_123.0,
            951_782_400_000.0,
            4_102_444_799_999.0,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-11-23T04:48:52+01:00"),
            parse_rfc3339("2026-11-23T03:48:52Z")
        );
        assert_eq!(
            parse_rfc3339("2026-11-23 03:48:52.5z"),
            parse_rfc3339("2026-11-23T03:48:52.500Z")
        );
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T03:48:52",
            "2026-11-23T03:48:52.Z",
            "not a date at all!!!",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_imf_fixdate() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            parse_rfc3339("1994-11-06T08:49:37Z")
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("120"), None);
    }

    #[test]
    fn day_numbers_are_utc() {
        assert_eq!(day_number(0.0), 0);
        assert_eq!(day_number(DAY_MS - 1.0), 0);
        assert_eq!(day_number(-1.0), -1);
    }
}
