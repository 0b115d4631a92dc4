//! The capture on the GPU: on a GPU run the host uploads the SER file's
//! stored samples once (raw bytes: a quarter of the decoded size for 8-bit
//! data), decodes them on the device (`shaders/decode.wgsl`, the same rules
//! as the CPU decoder) and keeps the decoded frames there for every stage
//! (scoring, alignment, stacking), which then read no frame on the CPU.
//!
//! All-or-nothing: when the decoded capture does not fit [`budget_bytes`] or
//! an allocation fails, nothing stays resident and the stages read rows as on
//! a CPU run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use abi_stable::std_types::RSlice;
use jupiter_plugin_api::gpu::helpers::{groups, run, Uniforms};
use jupiter_plugin_api::{DeviceFrames, ErrorKind, GpuBuffer, GpuServiceBox, StageError};

use crate::io::debayer::BayerPattern;
use crate::io::ser::{ColorId, SerFile};

/// The decode kernel.
const DECODE: &str = include_str!("../../shaders/decode.wgsl");

/// Largest decoded buffer tried first; halved while the device refuses it.
const MAX_BUFFER: u64 = 1 << 30;
/// Smallest buffer size tried before giving up.
const MIN_BUFFER: u64 = 32 << 20;
/// Stored bytes uploaded per chunk.
const CHUNK_BYTES: usize = 64 << 20;

/// Decoded bytes the host may keep on the device: `JUPITER_GPU_FRAMES_MB`
/// when set, else 16 GiB.
pub fn budget_bytes() -> u64 {
    std::env::var("JUPITER_GPU_FRAMES_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(16 << 30, |mb| mb << 20)
}

struct Resident {
    buffers: Vec<GpuBuffer>,
    per_buffer: u32,
}

impl Resident {
    fn release(self, gpu: &GpuServiceBox) {
        for b in self.buffers {
            gpu.destroy_buffer(b);
        }
    }
}

/// The decoded capture on the device, uploaded on first request.
pub struct CaptureOnDevice {
    gpu: GpuServiceBox,
    cancel: Arc<AtomicBool>,
    /// Threads copying the stored bytes into upload buffers.
    threads: usize,
    /// `None` until the first request; then the outcome, kept for all later ones.
    state: Mutex<Option<Option<Resident>>>,
}

impl CaptureOnDevice {
    /// A store on `gpu`; the upload stops (cancelled) once `cancel` is set;
    /// `threads` copy the bytes into the upload buffers.
    pub fn new(gpu: GpuServiceBox, cancel: Arc<AtomicBool>, threads: usize) -> CaptureOnDevice {
        CaptureOnDevice {
            gpu,
            cancel,
            threads: threads.max(1),
            state: Mutex::new(None),
        }
    }

    /// The resident frames of a source whose frame `k` is capture frame
    /// `indices[k]`, uploading the capture on the first call. `Ok(None)`: it
    /// does not fit (stages read rows).
    pub fn frames(
        &self,
        ser: &SerFile,
        indices: &[usize],
    ) -> Result<Option<DeviceFrames>, StageError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.is_none() {
            match self.upload(ser) {
                Ok(r) => *st = Some(r),
                Err(e) => {
                    // A failed upload is not retried by the next stage
                    // (it streams instead); a cancelled one may be.
                    if e.kind != ErrorKind::Cancelled {
                        *st = Some(None);
                    }
                    return Err(e);
                }
            }
        }
        Ok(st.as_ref().and_then(|r| r.as_ref()).map(|r| DeviceFrames {
            buffers: r.buffers.clone().into(),
            per_buffer: r.per_buffer,
            slots: indices.iter().map(|&i| i as u32).collect(),
        }))
    }

    /// Frees the device copy (later requests get `None`).
    pub fn free(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Some(r)) = st.take() {
            r.release(&self.gpu);
        }
        *st = Some(None);
    }

    fn upload(&self, ser: &SerFile) -> Result<Option<Resident>, StageError> {
        let (w, h, c) = (ser.width(), ser.height(), ser.channels());
        let n = ser.frame_count;
        let frame_words = (w * h * c) as u64;
        if n == 0 || frame_words == 0 || frame_words * 4 * n as u64 > budget_bytes() {
            return Ok(None);
        }
        let Some(res) = self.allocate(frame_words * 4, n) else {
            return Ok(None);
        };
        match self.fill(ser, &res) {
            Ok(()) => Ok(Some(res)),
            Err(e) => {
                res.release(&self.gpu);
                Err(e)
            }
        }
    }

    /// Buffers for `n` decoded frames of `frame_bytes`, as large as the
    /// device allows (down to [`MIN_BUFFER`]); `None` when it refuses.
    fn allocate(&self, frame_bytes: u64, n: usize) -> Option<Resident> {
        let mut size = MAX_BUFFER;
        loop {
            let per = (size / frame_bytes).clamp(1, n as u64) as usize;
            let mut out = Vec::new();
            let mut failed = None;
            for start in (0..n).step_by(per) {
                let k = per.min(n - start);
                match self.gpu.create_buffer(k as u64 * frame_bytes).into_result() {
                    Ok(b) => out.push(b),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let res = Resident {
                buffers: out,
                per_buffer: per as u32,
            };
            let Some(e) = failed else {
                return Some(res);
            };
            res.release(&self.gpu);
            // Too large for one binding: try smaller buffers; out of memory
            // or nothing smaller to try: stream instead.
            if e.kind != ErrorKind::OutOfMemory || per == 1 || size <= MIN_BUFFER {
                return None;
            }
            size /= 2;
        }
    }

    /// Uploads the stored bytes chunk by chunk and decodes each chunk into
    /// its frames' slots.
    fn fill(&self, ser: &SerFile, res: &Resident) -> Result<(), StageError> {
        let (w, h, c) = (ser.width(), ser.height(), ser.channels());
        let n = ser.frame_count;
        let fb = ser.header.frame_bytes();
        let per = res.per_buffer as usize;
        // Frames per chunk: a multiple of 4 (whole words of bytes), inside
        // one decoded buffer.
        let chunk = ((CHUNK_BYTES / fb.max(1)) / 4 * 4).max(4).min(per);
        let raw = self
            .gpu
            .create_buffer((chunk * fb).next_multiple_of(4) as u64)
            .into_result()?;
        let (kind, planes, pattern) = match ser.header.color {
            ColorId::Mono => (0, 1, 0),
            ColorId::Rgb => (0, 3, 0),
            ColorId::Bgr => (1, 3, 0),
            ColorId::Bayer(p) => (2, 1, pattern_code(p)),
        };
        let result = (|| {
            for buf in 0..res.buffers.len() {
                let first = buf * per;
                let in_buf = per.min(n - first);
                for start in (0..in_buf).step_by(chunk) {
                    if self.cancel.load(Ordering::Relaxed) {
                        return Err(StageError::cancelled());
                    }
                    let count = chunk.min(in_buf - start);
                    let bytes = ser
                        .stored_frames(first + start, count)
                        .ok_or_else(|| StageError::internal("frame range past the capture"))?;
                    ser.populate_frames(first + start, count);
                    let aligned = bytes.len() / 4 * 4;
                    self.gpu
                        .write_buffer_parallel(
                            raw,
                            0,
                            RSlice::from_slice(&bytes[..aligned]),
                            self.threads as u32,
                        )
                        .into_result()?;
                    if aligned < bytes.len() {
                        let mut tail = [0u8; 4];
                        tail[..bytes.len() - aligned].copy_from_slice(&bytes[aligned..]);
                        self.gpu
                            .write_buffer(raw, aligned as u64, RSlice::from_slice(&tail))
                            .into_result()?;
                    }
                    let u = Uniforms::new()
                        .u32(w as u32)
                        .u32(h as u32)
                        .u32(planes)
                        .u32(c as u32)
                        .u32(ser.header.bytes_per_sample() as u32)
                        .u32(ser.little_endian as u32)
                        .u32(kind)
                        .u32(pattern)
                        .u32(count as u32)
                        .u32(fb as u32)
                        .u32((start * w * h * c) as u32)
                        .f32(1.0 / ser.scale);
                    run(
                        &self.gpu,
                        DECODE,
                        "decode",
                        &[raw, res.buffers[buf]],
                        &u,
                        [groups(w, 16), groups(h, 16), count as u32],
                    )?;
                    // The bytes are on their way to the device: drop this
                    // process's mapping of them (they stay in the page cache).
                    ser.release_frames(first + start, count);
                }
            }
            self.gpu.synchronize().into_result()
        })();
        self.gpu.destroy_buffer(raw);
        result
    }
}

impl Drop for CaptureOnDevice {
    fn drop(&mut self) {
        self.free();
    }
}

/// The 2×2 layout as `decode.wgsl` reads it: colour of cell `i` in bits `2i`.
fn pattern_code(p: BayerPattern) -> u32 {
    (0..4).fold(0, |acc, i| {
        acc | ((p.color_at(i % 2, i / 2) as u32) << (2 * i))
    })
}
