//! Where each video frame's bytes are: from the OpenDML indexes (`indx`
//! super index → `ix##` standard indexes, which reach past 4 GB and into the
//! `AVIX` extensions), else the legacy `idx1`, else a scan of the `movi`
//! lists. Every entry is checked to lie inside the file, and the index grows
//! only with entries read from the file (at least 8 bytes each), so a
//! hostile header cannot cause a large allocation.

use super::header::Video;
use super::riff::{chunk_at, chunks, u16_at, u32_at, u64_at, Chunk};

/// One frame: offset of its data in the file and its size in bytes.
pub type Entry = (u64, u32);

/// The `movi` lists of the file (the first RIFF's and each `AVIX`'s):
/// the offset of the `movi` FourCC and the end of the list.
pub type MoviLists = Vec<(usize, usize)>;

/// The frame index and how it was found (for `info`).
pub struct FrameIndex {
    pub entries: Vec<Entry>,
    pub source: &'static str,
}

/// Builds the index of `video`'s frames.
pub fn frame_index(
    data: &[u8],
    video: &Video,
    idx1: Option<Chunk>,
    movi: &MoviLists,
) -> Result<FrameIndex, String> {
    if let Some(sup) = video.super_index {
        let entries = odml_index(data, sup, video.stream)?;
        if !entries.is_empty() {
            return Ok(FrameIndex {
                entries,
                source: "OpenDML (indx + ix##)",
            });
        }
    }
    if let (Some(idx1), Some(&(movi0, _))) = (idx1, movi.first()) {
        let entries = legacy_index(data, idx1, movi0, video.stream);
        if !entries.is_empty() {
            return Ok(FrameIndex {
                entries,
                source: "idx1",
            });
        }
    }
    Ok(FrameIndex {
        entries: scan_movi(data, movi, video.stream),
        source: "scan of the movi lists (no usable index)",
    })
}

/// Whether `id` names a video chunk of `stream` (`##db`, `##dc`).
fn is_video_chunk(id: &[u8; 4], stream: u32) -> bool {
    let digits = [b'0' + (stream / 10 % 10) as u8, b'0' + (stream % 10) as u8];
    id[0..2] == digits && (&id[2..4] == b"db" || &id[2..4] == b"dc")
}

/// The OpenDML indexes: the super index `indx` lists standard indexes
/// (`ix##`), each holding `(offset from its base, size)` per frame.
/// An `indx` that is itself a standard index is read as one.
fn odml_index(data: &[u8], sup: Chunk, stream: u32) -> Result<Vec<Entry>, String> {
    let d = sup.data(data);
    let longs = u16_at(d, 0).unwrap_or(0);
    let kind = d.get(3).copied().unwrap_or(0xff);
    let in_use = u32_at(d, 4).unwrap_or(0) as usize;
    let mut out = Vec::new();
    match (kind, longs) {
        // AVI_INDEX_OF_INDEXES, entries of 4 longs: qwOffset, dwSize, dwDuration.
        (0x00, 4) => {
            for k in 0..in_use.min(d.len().saturating_sub(24) / 16) {
                let at = 24 + 16 * k;
                let Some(offset) = u64_at(d, at).and_then(|o| usize::try_from(o).ok()) else {
                    continue;
                };
                let Some(ix) = chunk_at(data, offset, data.len()) else {
                    return Err(format!(
                        "the OpenDML super index points past the end of the file (standard index {k} at byte {offset}); the file is truncated"
                    ));
                };
                standard_index(data, ix, stream, &mut out)?;
            }
        }
        // AVI_INDEX_OF_CHUNKS in the header itself.
        (0x01, 2) => standard_index(data, sup, stream, &mut out)?,
        _ => {}
    }
    Ok(out)
}

/// Appends the entries of one standard index chunk (`ix##`).
fn standard_index(data: &[u8], ix: Chunk, stream: u32, out: &mut Vec<Entry>) -> Result<(), String> {
    let d = ix.data(data);
    let (longs, kind) = (u16_at(d, 0).unwrap_or(0), d.get(3).copied().unwrap_or(0xff));
    let chunk_id = d.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok());
    if longs != 2 || kind != 0x01 || !chunk_id.is_some_and(|id| is_video_chunk(&id, stream)) {
        // Another stream's index (or not an index): not ours.
        return Ok(());
    }
    let in_use = u32_at(d, 4).unwrap_or(0) as usize;
    let base = u64_at(d, 12).unwrap_or(0);
    for k in 0..in_use.min(d.len().saturating_sub(24) / 8) {
        let at = 24 + 8 * k;
        let (off, size) = (u32_at(d, at).unwrap_or(0), u32_at(d, at + 4).unwrap_or(0));
        // The high bit marks a delta frame; the size is the low 31 bits.
        let size = size & 0x7fff_ffff;
        let Some(start) = base.checked_add(off as u64) else {
            return Err(format!("standard index entry {k} overflows"));
        };
        out.push((start, size));
    }
    Ok(())
}

/// The legacy index: 16-byte entries (id, flags, offset, size) whose offset
/// counts from the `movi` FourCC (or, in some files, from the file start)
/// and points at the chunk header.
fn legacy_index(data: &[u8], idx1: Chunk, movi: usize, stream: u32) -> Vec<Entry> {
    let d = idx1.data(data);
    let entries = d.chunks_exact(16).filter(|e| {
        let id = [e[0], e[1], e[2], e[3]];
        is_video_chunk(&id, stream)
    });
    // Relative to `movi` unless the first entry only makes sense absolute.
    let first = entries.clone().next();
    let relative = first.is_none_or(|e| {
        let at = movi.saturating_add(u32_at(e, 8).unwrap_or(0) as usize);
        data.get(at..at.saturating_add(2)) == Some(&e[0..2])
    });
    let base = if relative { movi } else { 0 };
    entries
        .map(|e| {
            let off = u32_at(e, 8).unwrap_or(0) as u64;
            let size = u32_at(e, 12).unwrap_or(0);
            (base as u64 + off + 8, size)
        })
        .collect()
}

/// The video chunks found by walking the `movi` lists (and `rec ` lists in
/// them): the last resort for a file without a usable index.
fn scan_movi(data: &[u8], movi: &MoviLists, stream: u32) -> Vec<Entry> {
    let mut out = Vec::new();
    for &(start, end) in movi {
        scan_list(data, start + 4, end, stream, &mut out, 0);
    }
    out
}

fn scan_list(data: &[u8], start: usize, end: usize, stream: u32, out: &mut Vec<Entry>, depth: u32) {
    for c in chunks(data, start, end) {
        if is_video_chunk(&c.id, stream) {
            out.push((c.start as u64, c.declared));
        } else if &c.id == b"LIST" && depth < 2 {
            if let Some((kind, s, e)) = c.list_type(data) {
                if &kind == b"rec " {
                    scan_list(data, s, e, stream, out, depth + 1);
                }
            }
        }
    }
}
