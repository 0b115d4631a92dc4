//! Byte order and scale of the stored samples, inferred from the data: the
//! header's `LittleEndian` flag and depth are not trusted (see the module
//! docs of [`super`]).

use super::header::SerHeader;
use super::ByteOrder;

/// Chooses the byte order of 16-bit samples (from the first frame) and the
/// scale mapping samples to `[0, 1]` (from the largest value in `frames`: the
/// first, middle and last frame, since a capture may start dark). Returns
/// `(little_endian, scale)`. Frames not looked at may still hold larger
/// values: the decoder clamps those to 1.
pub(super) fn sample_format(
    header: &SerHeader,
    frames: &[&[u8]],
    order: ByteOrder,
    warnings: &mut Vec<String>,
) -> (bool, f32) {
    let wide = header.bytes_per_sample() == 2;
    let little_endian = !wide || byte_order(header, frames[0], order, warnings);
    let max = frames
        .iter()
        .map(|f| largest_sample(f, wide, little_endian))
        .max()
        .unwrap_or(0);
    let declared_max = (1u32 << header.depth) - 1;
    if max <= declared_max {
        return (little_endian, declared_max as f32);
    }
    let bits = if wide { 16 } else { 8 };
    warnings.push(format!(
        "header says {}-bit samples but values reach {max}; reading them as {bits}-bit",
        header.depth
    ));
    (little_endian, ((1u32 << bits) - 1) as f32)
}

/// The largest sample of one stored frame: a plain fold per byte order,
/// which vectorises (three 24-megapixel frames are read at every open).
fn largest_sample(frame: &[u8], wide: bool, little_endian: bool) -> u32 {
    let fold = |get: fn([u8; 2]) -> u16| {
        frame
            .chunks_exact(2)
            .fold(0u16, |m, b| m.max(get([b[0], b[1]])))
    };
    match (wide, little_endian) {
        (false, _) => frame.iter().fold(0u8, |m, &b| m.max(b)) as u32,
        (true, true) => fold(u16::from_le_bytes) as u32,
        (true, false) => fold(u16::from_be_bytes) as u32,
    }
}

/// Whether 16-bit samples are little-endian: as asked, or with `Auto` the
/// order that makes the first frame smoother (sum of horizontal neighbour
/// differences; a near tie means little-endian, the common case).
fn byte_order(
    header: &SerHeader,
    raw: &[u8],
    order: ByteOrder,
    warnings: &mut Vec<String>,
) -> bool {
    match order {
        ByteOrder::Little => return true,
        ByteOrder::Big => return false,
        ByteOrder::Auto => {}
    }
    let value = |i: usize, le: bool| sample16([raw[2 * i], raw[2 * i + 1]], le);
    let n = raw.len() / 2;
    let row = header.width as usize * header.color.planes();
    let step = (n / 200_000).max(1);
    let roughness = |le: bool| -> f64 {
        (0..n.saturating_sub(1))
            .step_by(step)
            .filter(|i| (i + 1) % row != 0)
            .map(|i| (value(i + 1, le) as f64 - value(i, le) as f64).abs())
            .sum()
    };
    let (le, be) = (roughness(true), roughness(false));
    let little = le <= be * 1.05;
    if !little {
        warnings.push(format!(
            "16-bit samples are big-endian (decided from the data; header LittleEndian flag = {}); use --byte-order to override",
            header.little_endian_flag
        ));
    }
    little
}

/// A 16-bit sample from its two stored bytes.
#[inline]
pub(super) fn sample16(b: [u8; 2], little_endian: bool) -> u16 {
    if little_endian {
        u16::from_le_bytes(b)
    } else {
        u16::from_be_bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_sample_in_either_byte_order_and_in_bytes() {
        let values: Vec<u16> = (0..1000u16).map(|i| i.wrapping_mul(37) % 4001).collect();
        let want = *values.iter().max().unwrap() as u32;
        let le: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let be: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(largest_sample(&le, true, true), want);
        assert_eq!(largest_sample(&be, true, false), want);
        assert_eq!(largest_sample(&[3, 250, 7], false, true), 250);
        assert_eq!(largest_sample(&[], true, true), 0);
    }
}
