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
    let depth = header.depth;
    let declared_max = (1u32 << depth) - 1;
    let raw = frames[0];
    if header.bytes_per_sample() == 1 {
        let max = frames
            .iter()
            .flat_map(|f| f.iter().copied())
            .max()
            .unwrap_or(0) as u32;
        if max > declared_max {
            warnings.push(format!(
                "header says {depth}-bit samples but values reach {max}; reading them as 8-bit"
            ));
            return (true, 255.0);
        }
        return (true, declared_max as f32);
    }
    let value = |i: usize, le: bool| sample16([raw[2 * i], raw[2 * i + 1]], le);
    let n = raw.len() / 2;
    let little_endian = match order {
        ByteOrder::Little => true,
        ByteOrder::Big => false,
        ByteOrder::Auto => {
            // Sum of horizontal neighbour differences: the right order gives a smooth image.
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
    };
    let max = frames
        .iter()
        .flat_map(|f| {
            f.chunks_exact(2)
                .map(|b| sample16([b[0], b[1]], little_endian))
        })
        .max()
        .unwrap_or(0) as u32;
    if max > declared_max {
        warnings.push(format!(
            "header says {depth}-bit samples but values reach {max}; reading them as 16-bit"
        ));
        return (little_endian, 65535.0);
    }
    (little_endian, declared_max as f32)
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
