//! The capture on the GPU: on a GPU run the host uploads the capture's
//! stored samples once (raw bytes: a quarter of the decoded size for 8-bit
//! data), decodes them on the device (`shaders/decode.wgsl`, the same rules
//! as the CPU decoder, calibration included: the masters are uploaded once
//! per capture) and keeps the decoded frames there for every stage
//! (scoring, alignment, stacking), which then read no frame on the CPU.
//! A capture whose samples the kernel cannot read (float FITS, image
//! sequences: [`CaptureFile::raw_layout`] is `None`) is decoded on the CPU
//! and uploaded as `f32`, frame by frame.
//!
//! All-or-nothing: when the decoded capture does not fit [`budget_bytes`] or
//! an allocation fails, nothing stays resident and the stages read rows as on
//! a CPU run.
//!
//! One store serves a whole batch of captures: [`CaptureOnDevice::finish`]
//! keeps a capture's buffers as spares that the next capture's upload fills
//! again (allocating and freeing gigabytes of device memory costs about as
//! much as uploading them); [`CaptureOnDevice::release`] frees everything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use abi_stable::std_types::RSlice;
use jupiter_plugin_api::gpu::helpers::{groups, run, Buffers, Uniforms};
use jupiter_plugin_api::{DeviceFrames, ErrorKind, GpuBuffer, GpuServiceBox, StageError};

use crate::io::capture::CaptureFile;
use crate::io::debayer::Demosaic;
use crate::io::ser::ColorId;

/// The decode kernel.
const DECODE: &str = include_str!("../../../shaders/decode.wgsl");

/// The uniform block of `decode.wgsl`, field for field its `P`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DecodeP {
    width: u32,
    height: u32,
    planes: u32,
    channels: u32,
    bytes: u32,
    little: u32,
    kind: u32,
    pattern: u32,
    count: u32,
    frame_bytes: u32,
    out_base: u32,
    inv_scale: f32,
    /// 0 bilinear, 1 MHC ([`Demosaic`]).
    method: u32,
    /// 1: calibrate from the tables at binding 2, of `samples` values each.
    calibrated: u32,
    samples: u32,
    _pad: u32,
}

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
    /// Largest decoded buffer ([`MAX_BUFFER`]) and stored bytes per upload
    /// chunk ([`CHUNK_BYTES`]); smaller in tests, to exercise the splits.
    max_buffer: u64,
    chunk_bytes: usize,
    state: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// The current capture: `None` until its first request; then the
    /// outcome, kept for all later ones.
    capture: Option<Option<Resident>>,
    /// Buffers of earlier captures, filled again by the next upload.
    spare: Vec<GpuBuffer>,
    /// The next capture of a batch, being uploaded on a thread.
    next: Option<Prefetch>,
}

/// What an upload ahead returns: its outcome and the spares it left.
type Ahead = (Result<Option<Resident>, StageError>, Vec<GpuBuffer>);

/// An upload running ahead (see [`CaptureOnDevice::prefetch`]): the capture
/// and the thread.
struct Prefetch {
    ser: Arc<CaptureFile>,
    thread: std::thread::JoinHandle<Ahead>,
}

impl CaptureOnDevice {
    /// A store on `gpu`; the upload stops (cancelled) once `cancel` is set;
    /// `threads` copy the bytes into the upload buffers.
    pub fn new(gpu: GpuServiceBox, cancel: Arc<AtomicBool>, threads: usize) -> CaptureOnDevice {
        CaptureOnDevice {
            gpu,
            cancel,
            threads: threads.max(1),
            max_buffer: MAX_BUFFER,
            chunk_bytes: CHUNK_BYTES,
            state: Mutex::new(Store::default()),
        }
    }

    /// This store with decoded buffers of at most `max_buffer` bytes and
    /// uploads of `chunk_bytes` (tests use small ones to cover captures that
    /// span several buffers and chunks).
    pub fn with_sizes(mut self, max_buffer: u64, chunk_bytes: usize) -> CaptureOnDevice {
        self.max_buffer = max_buffer.max(4);
        self.chunk_bytes = chunk_bytes.max(4);
        self
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The resident frames of a source whose frame `k` is capture frame
    /// `indices[k]`, uploading the capture on the first call. `Ok(None)`: it
    /// does not fit (stages read rows).
    pub fn frames(
        &self,
        ser: &CaptureFile,
        indices: &[usize],
    ) -> Result<Option<DeviceFrames>, StageError> {
        let mut st = self.store();
        if st.capture.is_none() {
            let mut spare = std::mem::take(&mut st.spare);
            let r = self.upload(ser, &mut spare);
            st.spare = spare;
            match r {
                Ok(r) => st.capture = Some(r),
                Err(e) => {
                    // A failed upload is not retried by the next stage
                    // (it streams instead); a cancelled one may be.
                    if e.kind != ErrorKind::Cancelled {
                        st.capture = Some(None);
                    }
                    return Err(e);
                }
            }
        }
        Ok(st
            .capture
            .as_ref()
            .and_then(|r| r.as_ref())
            .map(|r| DeviceFrames {
                buffers: r.buffers.clone().into(),
                per_buffer: r.per_buffer,
                slots: indices.iter().map(|&i| i as u32).collect(),
            }))
    }

    /// Ends the current capture: later requests get `None`; its buffers stay
    /// allocated for the next capture (see [`start`](Self::start)).
    pub fn finish(&self) {
        let mut st = self.store();
        if let Some(Some(r)) = st.capture.take() {
            st.spare.extend(r.buffers);
        }
        st.capture = Some(None);
    }

    /// Makes the store ready for capture `ser` (uploaded on its first
    /// request, or already by [`prefetch`](Self::prefetch)), keeping the
    /// previous capture's buffers for it.
    pub fn start(&self, ser: &Arc<CaptureFile>) {
        self.finish();
        let ahead = self.join_prefetch();
        let mut st = self.store();
        st.capture = None;
        if let Some((done, res)) = ahead {
            if Arc::ptr_eq(&done, ser) {
                st.capture = Some(Some(res));
            } else {
                st.spare.extend(res.buffers);
            }
        }
    }

    /// The capture being uploaded ahead, when it is `path` (the run of that
    /// capture uses this very file, whose bytes were uploaded).
    pub fn prefetched(&self, path: &std::path::Path) -> Option<Arc<CaptureFile>> {
        let st = self.store();
        let next = st.next.as_ref()?;
        (next.ser.path() == path).then(|| next.ser.clone())
    }

    /// Starts uploading the next capture of a batch on a thread, while the
    /// current one is aligned and stacked (on a GPU the copies and the
    /// current capture's kernels overlap); [`start`](Self::start) takes it
    /// over. Skipped when both captures would not fit the budget together.
    /// A failed upload ahead is left to the capture's own run to retry.
    pub fn prefetch(self: &Arc<Self>, ser: Arc<CaptureFile>) {
        let mut st = self.store();
        let current: u64 = match &st.capture {
            Some(Some(r)) => r.buffers.iter().map(|b| b.size).sum(),
            _ => 0,
        };
        if st.next.is_some()
            || current + decoded_frame_bytes(&ser) * ser.frame_count() as u64 > budget_bytes()
        {
            return;
        }
        let mut spare = std::mem::take(&mut st.spare);
        let (me, file) = (self.clone(), ser.clone());
        let thread = std::thread::spawn(move || {
            let r = me.upload(&file, &mut spare);
            (r, spare)
        });
        st.next = Some(Prefetch { ser, thread });
    }

    /// Waits for the upload ahead, if any: its capture and buffers when it
    /// succeeded (its spares go back to the store).
    fn join_prefetch(&self) -> Option<(Arc<CaptureFile>, Resident)> {
        let next = self.store().next.take()?;
        if next.thread.thread().id() == std::thread::current().id() {
            // The store is dropped by its own upload thread (the last owner
            // went away meanwhile): nothing to wait for; the buffers go
            // with the GPU service.
            return None;
        }
        let (r, spare) = next.thread.join().ok()?;
        self.store().spare.extend(spare);
        match r {
            Ok(Some(res)) => Some((next.ser, res)),
            _ => None,
        }
    }

    /// Frees every buffer (the current capture's, one uploaded ahead and the
    /// spares); later requests get `None` until [`start`](Self::start).
    pub fn release(&self) {
        self.finish();
        if let Some((_, res)) = self.join_prefetch() {
            res.release(&self.gpu);
        }
        let spare = std::mem::take(&mut self.store().spare);
        for b in spare {
            self.gpu.destroy_buffer(b);
        }
    }

    /// Uploads and decodes `ser`, filling buffers from `spare` where they
    /// are large enough (the others stay there) and allocating the rest.
    fn upload(
        &self,
        ser: &CaptureFile,
        spare: &mut Vec<GpuBuffer>,
    ) -> Result<Option<Resident>, StageError> {
        let n = ser.frame_count();
        let frame_bytes = decoded_frame_bytes(ser);
        if n == 0 || frame_bytes == 0 || frame_bytes * n as u64 > budget_bytes() {
            return Ok(None);
        }
        crate::timeline::mark("capture upload begins");
        // Compiled first: compiling while buffers are being allocated waits
        // for the driver.
        self.gpu
            .pipeline(DECODE.into(), "decode".into())
            .into_result()?;
        let per = (self.max_buffer / frame_bytes).clamp(1, n as u64) as usize;
        let need = |k: usize| per.min(n - k * per) as u64 * frame_bytes;
        // Spares that fit, smallest first; the rest are freed (they would
        // hold memory this capture may need).
        spare.sort_by_key(|b| b.size);
        let mut reused: Vec<Option<GpuBuffer>> = (0..n.div_ceil(per))
            .map(|k| {
                let i = spare.iter().position(|b| b.size >= need(k))?;
                Some(spare.remove(i))
            })
            .collect();
        for b in spare.drain(..) {
            self.gpu.destroy_buffer(b);
        }
        let first = match reused[0].take() {
            Some(b) => b,
            None => match self.first_buffer(frame_bytes, n) {
                Some((b, p)) if p == per => b,
                other => {
                    // None fits, or the device wants smaller buffers.
                    for b in reused.into_iter().flatten() {
                        self.gpu.destroy_buffer(b);
                    }
                    let Some((b, p)) = other else {
                        return Ok(None);
                    };
                    let fresh = vec![None; n.div_ceil(p)];
                    return self.upload_into(ser, frame_bytes, p, b, fresh);
                }
            },
        };
        self.upload_into(ser, frame_bytes, per, first, reused)
    }

    /// Fills buffer 0 (`first`) and the others: `reused[k]` where given,
    /// else allocated on a thread while the first ones fill (allocating
    /// device memory takes about as long as uploading).
    fn upload_into(
        &self,
        ser: &CaptureFile,
        frame_bytes: u64,
        per: usize,
        first: GpuBuffer,
        mut reused: Vec<Option<GpuBuffer>>,
    ) -> Result<Option<Resident>, StageError> {
        let n = ser.frame_count();
        let count = reused.len();
        let (tx, rx) = std::sync::mpsc::sync_channel(count);
        let _ = tx.send(Ok(first));
        let mut res = Resident {
            buffers: Vec::with_capacity(count),
            per_buffer: per as u32,
        };
        let stop = AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            let (gpu, stop) = (&self.gpu, &stop);
            s.spawn(move || {
                for (k, spare) in reused.iter_mut().enumerate().skip(1) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let frames = per.min(n - k * per) as u64;
                    let r = match spare.take() {
                        Some(b) => Ok(b),
                        None => gpu.create_buffer(frames * frame_bytes).into_result(),
                    };
                    let failed = r.is_err();
                    // The receiver outlives this thread (scoped).
                    let _ = tx.send(r);
                    if failed {
                        break;
                    }
                }
                // Spares not handed over (stopped early) go back the same way.
                for b in reused.into_iter().flatten() {
                    let _ = tx.send(Ok(b));
                }
            });
            let r = self.fill(ser, per, count, || {
                let b = rx
                    .recv()
                    .map_err(|_| StageError::internal("capture buffer allocation stopped"))??;
                res.buffers.push(b);
                Ok(b)
            });
            // On failure, stop the allocating thread and keep what it made
            // (released below); on success everything was received already.
            stop.store(true, Ordering::Relaxed);
            res.buffers.extend(rx.iter().filter_map(|b| b.ok()));
            r
        });
        match result {
            Ok(()) => {
                crate::timeline::mark("capture uploaded and decoded");
                Ok(Some(res))
            }
            Err(e) => {
                res.release(&self.gpu);
                // Out of device memory part way: stream instead.
                if e.kind == ErrorKind::OutOfMemory {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The first buffer for `n` decoded frames of `frame_bytes` and the
    /// frames per buffer: as large as the device allows (down to
    /// [`MIN_BUFFER`]); `None` when it refuses.
    fn first_buffer(&self, frame_bytes: u64, n: usize) -> Option<(GpuBuffer, usize)> {
        let mut size = self.max_buffer;
        loop {
            let per = (size / frame_bytes).clamp(1, n as u64) as usize;
            match self
                .gpu
                .create_buffer(per as u64 * frame_bytes)
                .into_result()
            {
                Ok(b) => return Some((b, per)),
                // Too large for one binding: try smaller buffers; out of
                // memory or nothing smaller to try: stream instead.
                Err(e) if e.kind == ErrorKind::OutOfMemory && per > 1 && size > MIN_BUFFER => {
                    size /= 2
                }
                Err(_) => return None,
            }
        }
    }

    /// Uploads the stored bytes chunk by chunk and decodes each chunk into
    /// its frames' slots.
    fn fill(
        &self,
        ser: &CaptureFile,
        per: usize,
        count: usize,
        mut next_buffer: impl FnMut() -> Result<GpuBuffer, StageError>,
    ) -> Result<(), StageError> {
        let Some(layout) = ser.raw_layout() else {
            return self.fill_decoded(ser, per, count, next_buffer);
        };
        let (w, h, c) = (ser.width(), ser.height(), ser.channels());
        let n = ser.frame_count();
        let fb = w * h * layout.color.planes() * layout.bytes;
        // Frames per chunk: a multiple of 4 (whole words of bytes), inside
        // one decoded buffer.
        let chunk = ((self.chunk_bytes / fb.max(1)) / 4 * 4).max(4).min(per);
        // (first frame in its decoded buffer, first frame, frames) per chunk.
        let mut plan = Vec::new();
        for buf in 0..count {
            let in_buf = per.min(n - buf * per);
            for start in (0..in_buf).step_by(chunk) {
                plan.push((start, buf * per + start, chunk.min(in_buf - start)));
            }
        }
        // Two raw buffers, used in turn: a chunk's copy need not wait for
        // the previous chunk's decode.
        let mut bufs = Buffers::new(&self.gpu);
        let raw = [
            bufs.zeroed((chunk * fb).div_ceil(4))?,
            bufs.zeroed((chunk * fb).div_ceil(4))?,
        ];
        // The calibration's tables, once per capture (one unused word
        // without a calibration: the binding is always there).
        let calibrated = ser.calibration().is_some();
        let cal = match ser.calibration() {
            Some(c) => bufs.upload(&c.device_tables())?,
            None => bufs.zeroed(1)?,
        };
        let (kind, planes, pattern) = match layout.color {
            ColorId::Mono => (0, 1, 0),
            ColorId::Rgb => (0, 3, 0),
            ColorId::Bgr => (1, 3, 0),
            ColorId::Bayer(p) => (2, 1, p.code()),
        };
        let base = DecodeP {
            width: w as u32,
            height: h as u32,
            planes,
            channels: c as u32,
            bytes: layout.bytes as u32,
            little: layout.little_endian as u32,
            kind,
            pattern,
            count: 0,
            frame_bytes: fb as u32,
            out_base: 0,
            inv_scale: 1.0 / layout.scale,
            method: (ser.demosaic() == Demosaic::Mhc) as u32,
            calibrated: calibrated as u32,
            samples: (w * h * planes as usize) as u32,
            _pad: 0,
        };
        let (mut waited, mut decode) = (0.0, 0.0);
        std::thread::scope(|sc| {
            let mapper = Mapper::start(sc, ser, plan.first().map(|p| (p.1, p.2)));
            let mut dst = None;
            for (i, &(start, frame, frames)) in plan.iter().enumerate() {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(StageError::cancelled());
                }
                if start == 0 {
                    // The first chunk of the next decoded buffer.
                    dst = Some(next_buffer()?);
                }
                let dst = dst.expect("set above");
                let t = std::time::Instant::now();
                mapper.ready_then(plan.get(i + 1).map(|p| (p.1, p.2)));
                waited += t.elapsed().as_secs_f64();
                self.write_raw(ser, raw[i % 2], frame, frames)?;
                let t = std::time::Instant::now();
                let u = DecodeP {
                    count: frames as u32,
                    out_base: (start * w * h * c) as u32,
                    ..base
                };
                run(
                    &self.gpu,
                    DECODE,
                    "decode",
                    &[raw[i % 2], dst, cal],
                    &Uniforms::from_bytes(bytemuck::bytes_of(&u)),
                    [groups(w, 16), groups(h, 16), frames as u32],
                )?;
                decode += t.elapsed().as_secs_f64();
                // The bytes are on their way to the device: this process's
                // mapping of them goes (they stay in the page cache).
                mapper.release(frame, frames);
            }
            if crate::timeline::enabled() {
                crate::errln!(
                    "gpu trace: upload of {} chunks: {waited:.3} s waiting for their bytes to be mapped, {decode:.3} s queueing their decoding",
                    plan.len()
                );
            }
            crate::timeline::mark("capture queued");
            self.gpu.synchronize().into_result()
        })
    }

    /// Copies the stored bytes of frames `frame .. frame + frames` into the
    /// start of `raw` (in 4-byte words; a last partial word zero-padded).
    fn write_raw(
        &self,
        ser: &CaptureFile,
        raw: GpuBuffer,
        frame: usize,
        frames: usize,
    ) -> Result<(), StageError> {
        let bytes = ser.raw_frames(frame, frames).ok_or_else(|| {
            StageError::internal(format!(
                "{}: cannot read frames {frame}..{}: past the end of the file (cut short while being read?)",
                ser.path().display(),
                frame + frames
            ))
        })?;
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
        Ok(())
    }
}

/// A thread that maps chunks of the stored bytes into this process ahead
/// of their copies and gives up the copied ones' mapping: page-table work
/// that, done between the copies, held up the upload (0.03–0.04 s of a
/// 920 MB one on the GPU machine).
struct Mapper {
    jobs: std::sync::mpsc::Sender<Job>,
    ready: std::sync::mpsc::Receiver<()>,
}

/// What the [`Mapper`] does with frames `(first, count)`.
enum Job {
    /// Map them in, then say so.
    Map(usize, usize),
    /// Give their mapping up.
    Release(usize, usize),
}

impl Mapper {
    /// Starts the thread in `scope`, mapping `first` (first frame, frames).
    fn start<'s, 'e>(
        scope: &'s std::thread::Scope<'s, 'e>,
        ser: &'e CaptureFile,
        first: Option<(usize, usize)>,
    ) -> Mapper {
        let (jobs, todo) = std::sync::mpsc::channel();
        let (done, ready) = std::sync::mpsc::channel();
        scope.spawn(move || {
            for job in todo {
                match job {
                    Job::Map(f, n) => {
                        ser.populate_frames(f, n);
                        let _ = done.send(());
                    }
                    Job::Release(f, n) => ser.release_frames(f, n),
                }
            }
        });
        let m = Mapper { jobs, ready };
        if let Some((f, n)) = first {
            let _ = m.jobs.send(Job::Map(f, n));
        }
        m
    }

    /// Waits for the chunk asked for last, then asks for `next`.
    fn ready_then(&self, next: Option<(usize, usize)>) {
        let _ = self.ready.recv();
        if let Some((f, n)) = next {
            let _ = self.jobs.send(Job::Map(f, n));
        }
    }

    /// Gives up the mapping of frames `frame .. frame + frames`.
    fn release(&self, frame: usize, frames: usize) {
        let _ = self.jobs.send(Job::Release(frame, frames));
    }
}

impl CaptureOnDevice {
    /// [`fill`](Self::fill) for a capture the kernel cannot decode: each
    /// frame decoded on the CPU and written as `f32` into its slot.
    fn fill_decoded(
        &self,
        ser: &CaptureFile,
        per: usize,
        count: usize,
        mut next_buffer: impl FnMut() -> Result<GpuBuffer, StageError>,
    ) -> Result<(), StageError> {
        let n = ser.frame_count();
        let mut frame = vec![0.0f32; ser.width() * ser.height() * ser.channels()];
        for buf in 0..count {
            let dst = next_buffer()?;
            for slot in 0..per.min(n - buf * per) {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(StageError::cancelled());
                }
                ser.decode_rows(buf * per + slot, 0, ser.height(), &mut frame)
                    .map_err(|e| StageError::internal(e.to_string()))?;
                let bytes: &[u8] = bytemuck::cast_slice(&frame);
                self.gpu
                    .write_buffer(dst, (slot * bytes.len()) as u64, RSlice::from_slice(bytes))
                    .into_result()?;
            }
        }
        crate::timeline::mark("capture queued (decoded on the CPU)");
        self.gpu.synchronize().into_result()
    }
}

impl Drop for CaptureOnDevice {
    fn drop(&mut self) {
        self.release();
    }
}

/// Bytes of one decoded frame of `ser` on the device (f32 samples).
fn decoded_frame_bytes(ser: &CaptureFile) -> u64 {
    (ser.width() * ser.height() * ser.channels() * 4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `DecodeP` has the size of the WGSL struct it fills.
    #[test]
    fn the_decode_uniform_block_matches_its_wgsl_struct() {
        let module = naga::front::wgsl::parse_str(DECODE).unwrap();
        let span = module
            .types
            .iter()
            .find_map(|(_, t)| match (&t.name, &t.inner) {
                (Some(n), naga::TypeInner::Struct { span, .. }) if n == "P" => Some(*span),
                _ => None,
            })
            .unwrap();
        assert_eq!(span as usize, std::mem::size_of::<DecodeP>());
    }
}
