//! The primary header of a FITS file: 80-character cards in 2880-byte
//! blocks up to `END`; the keywords a capture needs (`BITPIX`, `NAXISn`,
//! `BZERO`, `BSCALE`, `BAYERPAT`, `DATE-OBS`, a few descriptive ones).

use crate::io::debayer::BayerPattern;

/// FITS block size: the header and the data start on block boundaries.
pub const BLOCK: usize = 2880;
const CARD: usize = 80;
/// Most header blocks looked through for `END`.
const MAX_HEADER_BLOCKS: usize = 1000;
/// Largest accepted width or height (as for SER).
pub const MAX_DIM: u64 = 1 << 15;

/// The primary header as a capture sees it.
#[derive(Debug, Clone)]
pub struct FitsHeader {
    pub bitpix: i32,
    pub width: usize,
    pub height: usize,
    /// Frames (`NAXIS3`, 1 for a 2-D image).
    pub frames: u64,
    pub bzero: f64,
    pub bscale: f64,
    pub datamax: Option<f64>,
    /// `CAPDEPTH`: the bit depth of the capture a master written by
    /// `jupiter-host master` was built from (its samples are floats).
    pub capture_depth: Option<u32>,
    /// `CHANNELS`: a master of RGB frames written by `jupiter-host master`
    /// stores its channels as 3 planes (not 3 frames).
    pub channels: Option<u32>,
    pub bayer: Option<BayerPattern>,
    /// `DATE-OBS` as 100-ns ticks since 0001-01-01 UTC.
    pub date_obs: Option<i64>,
    /// `DATE-OBS` as written.
    pub date_text: Option<String>,
    /// `OBJECT`, `INSTRUME`, `TELESCOP` when present.
    pub described: Vec<(&'static str, String)>,
    /// Where the data starts (the block after `END`).
    pub data_start: usize,
    /// Problems worked around (an unknown `BAYERPAT`, an unreadable date).
    pub warnings: Vec<String>,
}

impl FitsHeader {
    /// Bytes per stored sample.
    pub fn sample_bytes(&self) -> usize {
        self.bitpix.unsigned_abs() as usize / 8
    }
    /// Bytes of one frame.
    pub fn frame_bytes(&self) -> usize {
        self.width * self.height * self.sample_bytes()
    }
}

/// The keyword and value text of a card (`None` for a card without `= `).
fn card_value(card: &[u8]) -> Option<(String, String)> {
    let key = String::from_utf8_lossy(&card[..8]).trim().to_string();
    if &card[8..10] != b"= " {
        return None;
    }
    let rest = String::from_utf8_lossy(&card[10..]);
    let rest = rest.trim_start();
    let value = if let Some(s) = rest.strip_prefix('\'') {
        // A string: up to the closing quote ('' is an escaped quote).
        let mut out = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(c);
        }
        out.trim_end().to_string()
    } else {
        rest.split('/').next().unwrap_or("").trim().to_string()
    };
    Some((key, value))
}

/// Parses the primary header at the start of `data`.
pub fn parse_header(data: &[u8]) -> Result<FitsHeader, String> {
    if !data.starts_with(b"SIMPLE  =") {
        return Err("not a FITS file (no SIMPLE card)".into());
    }
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut end = None;
    // Real headers are a few blocks: a file without END in the first
    // thousand is not read to its end in search of one.
    let head = &data[..data.len().min(MAX_HEADER_BLOCKS * BLOCK)];
    for (i, card) in head.chunks_exact(CARD).enumerate() {
        if card.starts_with(b"END     ") {
            end = Some((i + 1) * CARD);
            break;
        }
        if let Some(kv) = card_value(card) {
            keys.push(kv);
        }
    }
    let end = end.ok_or("the header has no END card (truncated?)")?;
    let get = |k: &str| {
        keys.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let int = |k: &str| -> Result<i64, String> {
        let v = get(k).ok_or_else(|| format!("the header has no {k}"))?;
        v.parse::<i64>()
            .map_err(|_| format!("{k} = {v} is not an integer"))
    };
    let float = |k: &str, default: f64| -> Result<f64, String> {
        match get(k) {
            None => Ok(default),
            Some(v) => v
                .replace(['D', 'd'], "E")
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{k} = {v} is not a number")),
        }
    };
    if get("SIMPLE") != Some("T") {
        return Err("SIMPLE is not T (not a standard FITS file)".into());
    }
    let bitpix = int("BITPIX")?;
    if ![8, 16, 32, -32, -64].contains(&bitpix) {
        return Err(format!("BITPIX = {bitpix} is not a FITS sample type"));
    }
    let naxis = int("NAXIS")?;
    if !(2..=3).contains(&naxis) {
        return Err(format!(
            "NAXIS = {naxis}: a capture is a 2-D image or a cube of frames (NAXIS 2 or 3)"
        ));
    }
    let dim = |k: &str| -> Result<u64, String> {
        let v = int(k)?;
        if v < 1 || v as u64 > MAX_DIM {
            return Err(format!("{k} = {v} is outside 1..={MAX_DIM}"));
        }
        Ok(v as u64)
    };
    let (width, height) = (dim("NAXIS1")?, dim("NAXIS2")?);
    let frames = if naxis == 3 {
        let v = int("NAXIS3")?;
        if !(1..=i32::MAX as i64).contains(&v) {
            return Err(format!("NAXIS3 = {v}: the frame count must be 1 or more"));
        }
        v as u64
    } else {
        1
    };
    let mut warnings = Vec::new();
    let bayer = get("BAYERPAT").and_then(|p| {
        let parsed = BayerPattern::parse(p);
        if parsed.is_none() {
            warnings.push(format!(
                "BAYERPAT = '{p}' is not RGGB, GRBG, GBRG or BGGR; frames read as mono"
            ));
        }
        parsed
    });
    let date_text = get("DATE-OBS").map(str::to_string);
    let date_obs = date_text.as_deref().and_then(|d| {
        let t = date_ticks(d);
        if t.is_none() {
            warnings.push(format!("DATE-OBS = '{d}' is not an ISO 8601 date; ignored"));
        }
        t
    });
    let described = [
        ("object", "OBJECT"),
        ("instrument", "INSTRUME"),
        ("telescope", "TELESCOP"),
    ]
    .into_iter()
    .filter_map(|(name, k)| get(k).map(|v| (name, v.to_string())))
    .collect();
    Ok(FitsHeader {
        bitpix: bitpix as i32,
        width: width as usize,
        height: height as usize,
        frames,
        bzero: float("BZERO", 0.0)?,
        bscale: float("BSCALE", 1.0)?,
        datamax: float("DATAMAX", f64::NAN)
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0),
        capture_depth: get("CAPDEPTH").and_then(|v| v.parse().ok()),
        channels: get("CHANNELS").and_then(|v| v.parse().ok()),
        bayer,
        date_obs,
        date_text,
        described,
        data_start: end.div_ceil(BLOCK) * BLOCK,
        warnings,
    })
}

/// `YYYY-MM-DD[Thh:mm:ss[.fff]]` (UTC) as 100-ns ticks since 0001-01-01.
pub fn date_ticks(text: &str) -> Option<i64> {
    let t = text.trim().trim_end_matches('Z');
    let (date, time) = t.split_once('T').unwrap_or((t, "00:00:00"));
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    if d.next().is_some()
        || !(1..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    let mut tp = time.split(':');
    let (hh, mm): (i64, i64) = (tp.next()?.parse().ok()?, tp.next()?.parse().ok()?);
    let sec = tp.next().unwrap_or("0");
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let ss: i64 = whole.parse().ok()?;
    if !(0..24).contains(&hh) || !(0..60).contains(&mm) || !(0..61).contains(&ss) {
        return None;
    }
    // The fraction in 100-ns ticks, exactly (no float rounding).
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(7).collect();
    let ticks: i64 = digits.parse().ok()?;
    let days = days_from_civil(y, m, day) + 719_162;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) * 10_000_000 + ticks)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm, the inverse of the one `info` prints dates with).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::ser::iso8601;

    #[test]
    fn dates_round_trip_through_ticks() {
        for s in [
            "2000-02-29T12:34:56.789",
            "1970-01-01T00:00:00.000",
            "2024-12-31T23:59:59.500",
        ] {
            assert_eq!(iso8601(date_ticks(s).unwrap()).unwrap(), format!("{s}Z"));
        }
        assert_eq!(
            iso8601(date_ticks("2023-07-04").unwrap()).unwrap(),
            "2023-07-04T00:00:00.000Z"
        );
        for bad in ["", "2023", "2023-13-01", "yesterday", "2023-01-01T25:00:00"] {
            assert_eq!(date_ticks(bad), None, "{bad}");
        }
    }
}
