//! RIFF chunks over a byte slice: every size is clipped to the bytes that
//! exist, and every step moves forward by at least 8 bytes, so a hostile
//! file can neither read out of bounds nor loop.

/// One chunk: its FourCC, where its data starts and how long it is (the
/// declared size, clipped to the enclosing range).
#[derive(Debug, Clone, Copy)]
pub struct Chunk {
    pub id: [u8; 4],
    pub start: usize,
    pub len: usize,
    /// The size the header declared (may exceed `len` in a cut file).
    pub declared: u32,
}

impl Chunk {
    /// For a `RIFF` or `LIST`: its type (the first 4 data bytes) and the
    /// range of its sub-chunks.
    pub fn list_type(&self, data: &[u8]) -> Option<([u8; 4], usize, usize)> {
        if self.len < 4 {
            return None;
        }
        Some((
            fourcc(data, self.start)?,
            self.start + 4,
            self.start + self.len,
        ))
    }
    /// The chunk's data.
    pub fn data<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.start..self.start + self.len]
    }
}

/// The chunks of `data[start..end]`, in order.
pub fn chunks(data: &[u8], start: usize, end: usize) -> Chunks<'_> {
    Chunks {
        data,
        pos: start,
        end: end.min(data.len()),
    }
}

/// Iterator of [`chunks`].
pub struct Chunks<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl Iterator for Chunks<'_> {
    type Item = Chunk;
    fn next(&mut self) -> Option<Chunk> {
        let c = chunk_at(self.data, self.pos, self.end)?;
        // Data padded to an even length; at least the 8 header bytes.
        self.pos = c
            .start
            .saturating_add(c.declared as usize)
            .saturating_add(c.declared as usize & 1);
        Some(c)
    }
}

/// The chunk whose header is at `pos` (inside `..end`).
pub fn chunk_at(data: &[u8], pos: usize, end: usize) -> Option<Chunk> {
    let end = end.min(data.len());
    if pos.checked_add(8)? > end {
        return None;
    }
    let declared = u32_at(data, pos + 4)?;
    let start = pos + 8;
    Some(Chunk {
        id: fourcc(data, pos)?,
        start,
        len: (declared as usize).min(end - start),
        declared,
    })
}

/// Four bytes at `o`.
pub fn fourcc(b: &[u8], o: usize) -> Option<[u8; 4]> {
    b.get(o..o.checked_add(4)?)?.try_into().ok()
}

/// A little-endian `u16` at `o`.
pub fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// A little-endian `u32` at `o`.
pub fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(fourcc(b, o)?))
}

/// A little-endian `i32` at `o`.
pub fn i32_at(b: &[u8], o: usize) -> Option<i32> {
    Some(i32::from_le_bytes(fourcc(b, o)?))
}

/// A little-endian `u64` at `o`.
pub fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A FourCC as text for messages (`MJPG`, `Y800`, or hex when unprintable).
pub fn fourcc_text(id: [u8; 4]) -> String {
    if id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(&id).trim_end().to_string()
    } else {
        format!("0x{:08x}", u32::from_le_bytes(id))
    }
}
