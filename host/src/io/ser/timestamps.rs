//! The timestamp trailer: one 64-bit UTC time per frame, in 100-ns ticks
//! since year 1; problems with it are warnings, never errors.

use super::header::SerHeader;

/// 100-ns ticks per second, the unit of SER timestamps.
pub(super) const TICKS_PER_SECOND: i64 = 10_000_000;
/// Ticks from 0001-01-01 to 1970-01-01 (the SER epoch is year 1).
const TICKS_UNIX_EPOCH: i64 = 621_355_968_000_000_000;

/// Problems with a timestamp trailer, as warnings (never errors).
///
/// - steps that go backwards (out of order);
/// - values outside 1970..2200 (a trailer of garbage or of another unit);
/// - local time instead of UTC: the spec says trailer timestamps are UTC, but
///   some programs write local time. When the header's local start time and
///   UTC start time differ by a time-zone offset, and the first timestamp is
///   close to the local one rather than the UTC one, the trailer is local.
pub fn timestamp_warnings(header: &SerHeader, ts: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    if ts.is_empty() || ts.iter().all(|&t| t == 0) {
        return out;
    }
    let back: Vec<usize> = ts
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1] < w[0])
        .map(|(i, _)| i + 1)
        .collect();
    if let Some(first) = back.first() {
        out.push(format!(
            "timestamps in the trailer are not in increasing order ({} of {} steps go backwards, the first at frame {first}); they are reported as they are and not used for ordering",
            back.len(),
            ts.len() - 1
        ));
    }
    let year_1970 = TICKS_UNIX_EPOCH;
    let year_2200 = TICKS_UNIX_EPOCH + 230 * 365 * 86_400 * TICKS_PER_SECOND;
    let implausible = ts
        .iter()
        .filter(|&&t| !(year_1970..year_2200).contains(&t))
        .count();
    if implausible > 0 {
        out.push(format!(
            "{implausible} of {} trailer timestamps lie outside the years 1970 to 2200 (not 100-ns ticks since year 1?)",
            ts.len()
        ));
    }
    let (local, utc) = (header.date_time, header.date_time_utc);
    let offset = local.wrapping_sub(utc);
    let quarter_hour = 900 * TICKS_PER_SECOND;
    let plausible_zone = offset.unsigned_abs() >= quarter_hour as u64
        && offset.unsigned_abs() <= 14 * 3600 * TICKS_PER_SECOND as u64;
    if utc > 0 && local > 0 && plausible_zone {
        let t0 = ts[0];
        if t0.abs_diff(local) < t0.abs_diff(utc) {
            out.push(format!(
                "trailer timestamps look like local time, not UTC as the SER spec says (they match the header's local start time, which is {:+.2} h from UTC)",
                offset as f64 / (3600 * TICKS_PER_SECOND) as f64
            ));
        }
    }
    out
}

/// A SER time (100-ns ticks since 0001-01-01) as ISO 8601 UTC with
/// milliseconds, e.g. `2022-08-29T10:13:20.000Z`; `None` outside the
/// years 1..=9999 (a zero or garbage field).
pub fn iso8601(ticks: i64) -> Option<String> {
    const TICKS_PER_DAY: i64 = 86_400 * TICKS_PER_SECOND;
    if ticks <= 0 {
        return None;
    }
    let days_since_year_1 = ticks / TICKS_PER_DAY;
    let rem = ticks % TICKS_PER_DAY;
    let (y, m, d) = civil_from_days(days_since_year_1 - 719_162)?;
    let ms = rem / 10_000;
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    ))
}

/// Year, month, day of `days` since 1970-01-01 in the proleptic Gregorian
/// calendar (the era arithmetic of H. Hinnant's date algorithms).
fn civil_from_days(days: i64) -> Option<(i64, i64, i64)> {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (1..=9999).contains(&y).then_some((y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_as_iso_dates() {
        assert_eq!(
            iso8601(TICKS_UNIX_EPOCH).unwrap(),
            "1970-01-01T00:00:00.000Z"
        );
        // 2000-02-29 12:34:56.789 UTC, a leap day.
        let t = TICKS_UNIX_EPOCH + (951_827_696_789 * 10_000);
        assert_eq!(iso8601(t).unwrap(), "2000-02-29T12:34:56.789Z");
        assert_eq!(
            iso8601(638_000_000_000_000_000).unwrap(),
            "2022-09-28T22:13:20.000Z"
        );
        assert_eq!(iso8601(0), None);
        assert_eq!(iso8601(-5), None);
    }
}
