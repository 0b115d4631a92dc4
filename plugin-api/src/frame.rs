//! Images and frames as they cross the boundary, and the align → stack contract.

use abi_stable::sabi_trait;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{ROption, RResult, RSliceMut, RVec};
use abi_stable::StableAbi;

use crate::error::StageError;
use crate::gpu::GpuBuffer;

/// Dimensions of the frames a [`FrameSource`] serves.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub width: u32,
    pub height: u32,
    /// 1 (mono) or 3 (RGB, interleaved).
    pub channels: u32,
    /// Number of frames.
    pub count: u32,
}

impl FrameInfo {
    /// Samples in one row (`width * channels`).
    pub fn row_len(&self) -> usize {
        self.width as usize * self.channels as usize
    }
    /// Width, height and channels as `usize`, the form pixel loops index with.
    pub fn dims(&self) -> (usize, usize, usize) {
        (
            self.width as usize,
            self.height as usize,
            self.channels as usize,
        )
    }
    /// Samples in one frame.
    pub fn frame_len(&self) -> usize {
        self.row_len() * self.height as usize
    }
    /// [`check_read`](Self::check_read) for a luminance read
    /// ([`FrameSource::read_luminance_rows`]): `out_len` must be `rows × width`.
    pub fn check_luminance_read(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out_len: usize,
    ) -> Result<(), StageError> {
        self.check_read(index, y0, rows, out_len * self.channels as usize)
    }
    /// The contract of [`FrameSource::read_rows`], checked in one place for
    /// every frame source (the host's and the test sources): `index` is a
    /// frame of the source, rows `y0 .. y0 + rows` lie inside the frame
    /// (without overflow) and `out_len` is exactly `rows * row_len()`.
    /// One `Internal` error message for every violation.
    pub fn check_read(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out_len: usize,
    ) -> Result<(), StageError> {
        let rows_fit = y0
            .checked_add(rows)
            .is_some_and(|end| end <= self.height as usize);
        let len_fits = rows
            .checked_mul(self.row_len())
            .is_some_and(|n| n == out_len);
        if index < self.count as usize && rows_fit && len_fits {
            return Ok(());
        }
        Err(StageError::internal(format!(
            "read_rows({index}, {y0}, {rows}) with a buffer of {out_len} samples on {} frames of {}×{}×{}",
            self.count, self.width, self.height, self.channels
        )))
    }
}

/// Frames served by the host on demand, decoded to `f32` in `[0, 1]` with
/// channels interleaved. Reading is thread-safe: stages may read different
/// frames (or rows) from several parallel tasks at once.
#[sabi_trait]
pub trait FrameSource: Send + Sync {
    /// Frame dimensions and count.
    fn info(&self) -> FrameInfo;

    /// Decodes rows `y0 .. y0 + rows` of frame `index` into `out`, which must
    /// hold exactly `rows * width * channels` samples.
    #[sabi(last_prefix_field)]
    fn read_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError>;

    /// The frames already decoded on the GPU, when the host keeps the
    /// capture there (a GPU run whose frames fit the device): `RNone` when
    /// they are not (no GPU, CPU run, too large), and the stage reads rows
    /// instead. The first call uploads the whole capture (raw samples,
    /// decoded by a kernel); later calls, from any stage, reuse it.
    fn device_frames(&self) -> RResult<ROption<DeviceFrames>, StageError> {
        RResult::ROk(ROption::RNone)
    }

    /// Rows `y0 .. y0 + rows` of frame `index` as luminance, the mean of
    /// its channels ([`channel_mean`]), into `out` (`rows * width`
    /// samples): what scoring and alignment read. The host computes it
    /// straight from a Bayer mosaic, without the interleaved RGB rows and
    /// the extra pass over them; the values are those of `read_rows` then
    /// [`channel_mean`], bit for bit.
    fn read_luminance_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        let info = self.info();
        let c = info.channels as usize;
        if let Err(e) = info.check_luminance_read(index, y0, rows, out.len()) {
            return RResult::RErr(e);
        }
        if c == 1 {
            return self.read_rows(index, y0, rows, out);
        }
        let mut all = vec![0.0f32; out.len() * c];
        if let RResult::RErr(e) = self.read_rows(index, y0, rows, all.as_mut_slice().into()) {
            return RResult::RErr(e);
        }
        channel_mean_into(&all, c, &mut out);
        RResult::ROk(())
    }

    /// The colour mosaic of a raw colour (Bayer) capture whose frames the
    /// host demosaics: the colour (0 R, 1 G, 2 B, see [`mosaic_color`]) of
    /// each pixel of a 2×2 cell. `RNone` for mono and true-colour frames.
    /// The sensor measured one colour per pixel; a stage that wants only
    /// measured samples (scoring at the mosaic's own resolution) reads
    /// them with [`read_mosaic_rows`](Self::read_mosaic_rows), or on the
    /// device takes each pixel's own colour from the demosaiced frames.
    fn mosaic(&self) -> ROption<u32> {
        ROption::RNone
    }

    /// Rows `y0 .. y0 + rows` of frame `index` as the mosaic's samples
    /// (`rows * width`): each pixel's own colour ([`mosaic`](Self::mosaic))
    /// of the demosaiced frame, i.e. the calibrated sample clamped to
    /// `[0, 1]`, without demosaicing. An error for a source without a mosaic.
    fn read_mosaic_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        let _ = (index, y0, rows, out);
        RResult::RErr(StageError::internal(
            "read_mosaic_rows on frames without a colour mosaic",
        ))
    }
}

/// The colour (0 R, 1 G, 2 B) of pixel `(x, y)` under a mosaic code of
/// [`FrameSource::mosaic`]: bits `2 · ((x % 2) + 2 · (y % 2))`.
pub fn mosaic_color(code: u32, x: usize, y: usize) -> usize {
    ((code >> (2 * ((x % 2) + 2 * (y % 2)))) & 3) as usize
}

/// The mean of each pixel's `channels` interleaved samples: the luminance
/// every stage scores and aligns on (a mono plane is its own).
pub fn channel_mean(data: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return data.to_vec();
    }
    let mut out = vec![0.0; data.len() / channels.max(1)];
    channel_mean_into(data, channels, &mut out);
    out
}

/// [`channel_mean`] into `out` (`data.len() / channels` samples).
pub fn channel_mean_into(data: &[f32], channels: usize, out: &mut [f32]) {
    if channels == 3 {
        // The common case, written out (the same sum order as below).
        for (o, p) in out.iter_mut().zip(data.chunks_exact(3)) {
            *o = (p[0] + p[1] + p[2]) / 3.0;
        }
        return;
    }
    for (o, p) in out.iter_mut().zip(data.chunks_exact(channels)) {
        *o = p.iter().sum::<f32>() / channels as f32;
    }
}

/// Decoded frames resident on the GPU (see [`FrameSource::device_frames`]):
/// `f32` samples as [`FrameSource::read_rows`] gives them, each frame
/// `frame_len` consecutive words. The buffers belong to the host; stages
/// read them and never write or destroy them.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct DeviceFrames {
    pub buffers: RVec<GpuBuffer>,
    /// Frames per buffer.
    pub per_buffer: u32,
    /// Slot of each frame of the source (in source order): the frame lies
    /// in `buffers[slot / per_buffer]` from word `(slot % per_buffer) * frame_len`.
    pub slots: RVec<u32>,
}

impl DeviceFrames {
    /// Buffer and word offset of frame `index` of the source.
    pub fn locate(&self, index: usize, frame_len: usize) -> (GpuBuffer, usize) {
        let slot = self.slots[index] as usize;
        let per = self.per_buffer.max(1) as usize;
        (self.buffers[slot / per], (slot % per) * frame_len)
    }

    /// The frames `indices` (of the source) in buffer order: grouped by
    /// buffer, buffers in order of first appearance, request order kept
    /// within a buffer (so a chunk of the result spans few buffers).
    pub fn in_buffer_order(&self, indices: &[usize], frame_len: usize) -> Vec<DeviceSlot> {
        let mut seen: Vec<GpuBuffer> = Vec::new();
        let mut out: Vec<(usize, DeviceSlot)> = indices
            .iter()
            .enumerate()
            .map(|(pos, &index)| {
                let (buffer, offset) = self.locate(index, frame_len);
                let rank = seen.iter().position(|b| *b == buffer).unwrap_or_else(|| {
                    seen.push(buffer);
                    seen.len() - 1
                });
                let slot = DeviceSlot {
                    pos,
                    index,
                    buffer,
                    offset,
                };
                (rank, slot)
            })
            .collect();
        out.sort_by_key(|(rank, _)| *rank);
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// The runs of consecutive slots in one buffer: `(buffer, first, count)`
    /// (one dispatch each; see [`in_buffer_order`](Self::in_buffer_order)).
    pub fn runs(slots: &[DeviceSlot]) -> Vec<(GpuBuffer, usize, usize)> {
        let mut runs: Vec<(GpuBuffer, usize, usize)> = Vec::new();
        for (k, s) in slots.iter().enumerate() {
            match runs.last_mut() {
                Some(r) if r.0 == s.buffer => r.2 += 1,
                _ => runs.push((s.buffer, k, 1)),
            }
        }
        runs
    }
}

/// Where one requested frame lies on the device (see
/// [`DeviceFrames::in_buffer_order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSlot {
    /// Position in the request.
    pub pos: usize,
    /// Frame index in the source.
    pub index: usize,
    pub buffer: GpuBuffer,
    /// Word offset of the frame in `buffer`.
    pub offset: usize,
}

/// How stages receive frames: a borrowed trait object.
pub type FrameSourceRef<'a> = FrameSource_TO<'a, RRef<'a, ()>>;

/// Convenience reads over any frame source.
pub trait FrameSourceExt {
    /// Reads one whole frame into `out` (`frame_len` samples).
    fn read_frame(&self, index: usize, out: &mut [f32]) -> Result<(), StageError>;
    /// Reads one whole frame into a new vector.
    fn frame(&self, index: usize) -> Result<Vec<f32>, StageError>;
    /// [`FrameSource::device_frames`] as a `Result`.
    fn on_device(&self) -> Result<Option<DeviceFrames>, StageError>;
    /// Frame `index`'s luminance ([`FrameSource::read_luminance_rows`]),
    /// `width × height` samples.
    fn luminance(&self, index: usize) -> Result<Vec<f32>, StageError>;
    /// Rows `y0 .. y0 + rows` of frame `index` as luminance, `rows × width`.
    fn luminance_rows(&self, index: usize, y0: usize, rows: usize) -> Result<Vec<f32>, StageError>;
}

impl<'a> FrameSourceExt for FrameSourceRef<'a> {
    fn read_frame(&self, index: usize, out: &mut [f32]) -> Result<(), StageError> {
        let info = self.info();
        self.read_rows(index, 0, info.height as usize, out.into())
            .into_result()
    }
    fn frame(&self, index: usize) -> Result<Vec<f32>, StageError> {
        let mut v = crate::mem::zeroed(self.info().frame_len());
        self.read_frame(index, &mut v)?;
        Ok(v)
    }
    fn on_device(&self) -> Result<Option<DeviceFrames>, StageError> {
        self.device_frames().into_result().map(|o| o.into_option())
    }
    fn luminance(&self, index: usize) -> Result<Vec<f32>, StageError> {
        self.luminance_rows(index, 0, self.info().height as usize)
    }
    fn luminance_rows(&self, index: usize, y0: usize, rows: usize) -> Result<Vec<f32>, StageError> {
        let mut v = crate::mem::zeroed(rows * self.info().width as usize);
        self.read_luminance_rows(index, y0, rows, v.as_mut_slice().into())
            .into_result()?;
        Ok(v)
    }
}

/// An image: `f32` samples in `[0, 1]` (values outside are allowed in
/// intermediate results), channels interleaved, rows top to bottom.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    /// Host pixels; empty while the image lives on the GPU (`device` is Some).
    pub data: RVec<f32>,
    /// The device buffer holding the pixels when the image is GPU-resident.
    pub device: ROption<GpuBuffer>,
}

impl Image {
    /// Width, height and channels as `usize`, the form pixel loops index with.
    pub fn dims(&self) -> (usize, usize, usize) {
        (
            self.width as usize,
            self.height as usize,
            self.channels as usize,
        )
    }
    /// A zero image.
    pub fn new(width: u32, height: u32, channels: u32) -> Image {
        let n = width as usize * height as usize * channels as usize;
        Image {
            width,
            height,
            channels,
            data: crate::mem::zeroed(n).into(),
            device: ROption::RNone,
        }
    }
    /// An image whose pixels are in a device buffer (`data` empty): what a
    /// GPU path returns to keep its result on the device.
    pub fn on_device(width: u32, height: u32, channels: u32, buffer: GpuBuffer) -> Image {
        Image {
            width,
            height,
            channels,
            data: RVec::new(),
            device: ROption::RSome(buffer),
        }
    }
    /// Wraps host pixels; panics if the length does not match.
    pub fn from_vec(width: u32, height: u32, channels: u32, data: Vec<f32>) -> Image {
        assert_eq!(
            data.len(),
            width as usize * height as usize * channels as usize,
            "image size mismatch"
        );
        Image {
            width,
            height,
            channels,
            data: data.into(),
            device: ROption::RNone,
        }
    }
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.width as usize * self.height as usize * self.channels as usize
    }
    /// True for a 0×0 image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Samples per row.
    pub fn row_len(&self) -> usize {
        self.width as usize * self.channels as usize
    }
    /// Splits the interleaved image into one plane per channel.
    pub fn planes(&self) -> Vec<Vec<f32>> {
        let c = self.channels as usize;
        (0..c)
            .map(|k| self.data.iter().skip(k).step_by(c).copied().collect())
            .collect()
    }
    /// Builds an interleaved image from channel planes.
    pub fn from_planes(width: u32, height: u32, planes: &[Vec<f32>]) -> Image {
        let c = planes.len();
        let n = width as usize * height as usize;
        let mut data = vec![0.0; n * c];
        for (k, p) in planes.iter().enumerate() {
            assert_eq!(p.len(), n, "plane size mismatch");
            for (i, v) in p.iter().enumerate() {
                data[i * c + k] = *v;
            }
        }
        Image::from_vec(width, height, c as u32, data)
    }
}

/// A smooth field of local shifts over a regular grid of alignment points,
/// with a per-point weight (0 = this frame is not used at this point).
///
/// Grid point `(i, j)` sits at `(x0 + i * step_x, y0 + j * step_y)`; values
/// are stored row-major (`j * cols + i`). Between points the field is
/// interpolated bilinearly; outside it is clamped to the nearest edge.
///
/// With `refine` > 1 the stored grid is a coarse one that stands for the
/// grid refined `refine` times in each direction by Catmull-Rom
/// interpolation ([`refine_nodes`]; weights then clamped to `0..=1`):
/// readers take [`WarpField::dense`] (or [`FrameWarp::dense_field`]) and
/// interpolate that. An aligner keeps its fields coarse so that memory
/// grows with the measured points, not with the refinement (40,000 frames:
/// 73 MB of refined fields against 20 MB of coarse ones).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct WarpField {
    pub cols: u32,
    pub rows: u32,
    pub x0: f32,
    pub y0: f32,
    pub step_x: f32,
    pub step_y: f32,
    pub dx: RVec<f32>,
    pub dy: RVec<f32>,
    pub weight: RVec<f32>,
    /// Refinement the stored nodes stand for (1: they are the field).
    pub refine: u32,
}

/// Upsamples a `cols × rows` grid of node values by `factor` in both
/// directions (Catmull-Rom, edges replicated, along x then along y): the
/// result has `(cols - 1) * factor + 1` columns, the original nodes keep
/// their values, and the nodes in between follow the field smoothly. A
/// field interpolated bilinearly between nodes refined this way follows a
/// distortion that varies over a few grid steps much more closely than
/// bilinear interpolation of the coarse grid.
pub fn refine_nodes(
    values: &[f32],
    cols: usize,
    rows: usize,
    factor: usize,
) -> (Vec<f32>, usize, usize) {
    let factor = factor.max(1);
    if factor == 1 || cols == 0 || rows == 0 {
        return (values.to_vec(), cols, rows);
    }
    let r = Refiner::new(cols, rows, factor);
    (r.apply(values), r.fc, r.fr)
}

/// [`refine_nodes`]' taps, found once per grid (a stacker refines a
/// frame's three value grids for every band it stacks).
struct Refiner {
    cols: usize,
    fc: usize,
    fr: usize,
    /// Per refined column (row): the four coarse nodes and their weights.
    xt: Vec<([usize; 4], [f32; 4])>,
    yt: Vec<([usize; 4], [f32; 4])>,
}

impl Refiner {
    fn new(cols: usize, rows: usize, factor: usize) -> Refiner {
        let up = |n: usize| (n - 1) * factor + 1;
        let taps = |i: usize, n: usize| -> ([usize; 4], [f32; 4]) {
            let base = i / factor;
            let t = (i % factor) as f32 / factor as f32;
            let at = |d: isize| (base as isize + d).clamp(0, n as isize - 1) as usize;
            ([at(-1), at(0), at(1), at(2)], catmull_rom(t))
        };
        let (fc, fr) = (up(cols), up(rows));
        Refiner {
            cols,
            fc,
            fr,
            xt: (0..fc).map(|i| taps(i, cols)).collect(),
            yt: (0..fr).map(|j| taps(j, rows)).collect(),
        }
    }

    /// The values refined: along x, then along y.
    fn apply(&self, values: &[f32]) -> Vec<f32> {
        let (cols, fc) = (self.cols, self.fc);
        let rows = values.len() / cols;
        let mut tmp = vec![0.0f32; fc * rows];
        for j in 0..rows {
            let row = &values[j * cols..(j + 1) * cols];
            for (o, (idx, wt)) in tmp[j * fc..(j + 1) * fc].iter_mut().zip(&self.xt) {
                *o = (0..4).map(|q| wt[q] * row[idx[q]]).sum();
            }
        }
        let mut out = vec![0.0f32; fc * self.fr];
        for (j, (idx, wt)) in self.yt.iter().enumerate() {
            for (i, o) in out[j * fc..(j + 1) * fc].iter_mut().enumerate() {
                *o = (0..4).map(|q| wt[q] * tmp[idx[q] * fc + i]).sum();
            }
        }
        out
    }
}

/// Catmull-Rom weights (cubic convolution, a = −0.5) of taps −1, 0, 1, 2
/// at fraction `t` in `[0, 1)`: what [`refine_nodes`] and kit's resamplers
/// (`jupiter_kit::warp::cubic_weights`) weigh with.
#[inline(always)]
pub fn catmull_rom(t: f32) -> [f32; 4] {
    let t2 = t * t;
    let t3 = t2 * t;
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

impl WarpField {
    /// A field of `cols × rows` nodes, node (0, 0) at pixel `origin` and the
    /// others `step` apart; `dx`, `dy` and `weight` hold one value per node,
    /// row by row.
    pub fn new(
        (cols, rows): (usize, usize),
        (x0, y0): (f32, f32),
        (step_x, step_y): (f32, f32),
        [dx, dy, weight]: [Vec<f32>; 3],
    ) -> WarpField {
        let (cols, rows) = (cols as u32, rows as u32);
        let (dx, dy, weight) = (dx.into(), dy.into(), weight.into());
        WarpField {
            cols,
            rows,
            x0,
            y0,
            step_x,
            step_y,
            dx,
            dy,
            weight,
            refine: 1,
        }
    }

    /// [`WarpField::new`] of the coarse nodes of a field that stands for
    /// them refined `factor` times ([`refine_nodes`]); `step` is the coarse
    /// nodes' spacing.
    pub fn refined(
        dims: (usize, usize),
        origin: (f32, f32),
        step: (f32, f32),
        values: [Vec<f32>; 3],
        factor: usize,
    ) -> WarpField {
        WarpField {
            refine: factor.max(1) as u32,
            ..WarpField::new(dims, origin, step, values)
        }
    }

    /// The node counts (columns, rows) of [`Self::dense`], without making it.
    pub fn dense_dims(&self) -> (u32, u32) {
        let f = self.refine.max(1);
        let up = |n: u32| if n == 0 { 0 } else { (n - 1) * f + 1 };
        (up(self.cols), up(self.rows))
    }

    /// The field readers interpolate: this one when `refine` is 1, else its
    /// nodes refined ([`refine_nodes`]), the weights clamped to `0..=1`, at
    /// `step / refine`.
    pub fn dense(&self) -> std::borrow::Cow<'_, WarpField> {
        let f = self.refine as usize;
        if f <= 1 {
            return std::borrow::Cow::Borrowed(self);
        }
        let (c, r) = (self.cols as usize, self.rows as usize);
        if c == 0 || r == 0 {
            return std::borrow::Cow::Borrowed(self);
        }
        let refiner = Refiner::new(c, r, f);
        let (cols, rows) = (refiner.fc, refiner.fr);
        let (dx, dy) = (refiner.apply(&self.dx), refiner.apply(&self.dy));
        let mut weight = refiner.apply(&self.weight);
        weight.iter_mut().for_each(|w| *w = w.clamp(0.0, 1.0));
        std::borrow::Cow::Owned(WarpField::new(
            (cols, rows),
            (self.x0, self.y0),
            (self.step_x / f as f32, self.step_y / f as f32),
            [dx, dy, weight],
        ))
    }

    /// The grid columns around pixel column `x`: the two node indices and
    /// the fraction of the way from the first to the second (clamped at the
    /// edges). Every user of the field interpolates with these operations,
    /// so that their results agree to the bit.
    pub fn column_nodes(&self, x: f32) -> (usize, usize, f32) {
        nodes(x, self.x0, self.step_x, self.cols as usize)
    }
    /// [`Self::column_nodes`] for rows.
    pub fn row_nodes(&self, y: f32) -> (usize, usize, f32) {
        nodes(y, self.y0, self.step_y, self.rows as usize)
    }

    /// The field along pixel row `y` at every grid column: `dx`, `dy` and
    /// `weight` one after the other in `out` (`3 · cols` values). With
    /// [`Self::column_nodes`] a resampler interpolates a whole row from it,
    /// computing what [`Self::sample`] computes, in the same order.
    pub fn along_row(&self, y: f32, out: &mut [f32]) {
        let (j0, j1, ty) = self.row_nodes(y);
        let c = self.cols as usize;
        for (k, v) in [&self.dx, &self.dy, &self.weight].into_iter().enumerate() {
            for i in 0..c {
                out[k * c + i] = v[j0 * c + i] * (1.0 - ty) + v[j1 * c + i] * ty;
            }
        }
    }

    /// Interpolated `(dx, dy, weight)` at pixel `(x, y)`: bilinear, along
    /// the grid's columns first, then along the row. The resamplers compute
    /// the same operations in this order (the column step once per row), so
    /// that they agree with this to the bit.
    pub fn sample(&self, x: f32, y: f32) -> (f32, f32, f32) {
        let (i0, i1, tx) = self.column_nodes(x);
        let (j0, j1, ty) = self.row_nodes(y);
        let c = self.cols as usize;
        let lerp = |v: &RVec<f32>| {
            let a = v[j0 * c + i0] * (1.0 - ty) + v[j1 * c + i0] * ty;
            let b = v[j0 * c + i1] * (1.0 - ty) + v[j1 * c + i1] * ty;
            a * (1.0 - tx) + b * tx
        };
        (lerp(&self.dx), lerp(&self.dy), lerp(&self.weight))
    }
}

/// How one frame maps onto the reference.
///
/// Convention: the frame's content is displaced by `(dx, dy)` relative to the
/// reference, i.e. `frame(x + dx, y + dy) ≈ reference(x, y)`. The aligned
/// frame is obtained by sampling the frame at `(x + dx, y + dy)`. With a
/// `field`, the local shift at each pixel is `(dx, dy)` plus the field's
/// interpolated value there.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct FrameWarp {
    pub dx: f32,
    pub dy: f32,
    pub field: ROption<WarpField>,
}

/// Bilinear interpolation nodes along one axis of a field (see
/// [`WarpField::column_nodes`]).
fn nodes(p: f32, origin: f32, step: f32, count: usize) -> (usize, usize, f32) {
    let f = ((p - origin) / step).clamp(0.0, (count - 1) as f32);
    let i0 = (f.floor() as usize).min(count - 1);
    (i0, (i0 + 1).min(count - 1), f - i0 as f32)
}

impl FrameWarp {
    /// A global shift plus a local field on top of it.
    pub fn with_field(dx: f32, dy: f32, field: WarpField) -> FrameWarp {
        FrameWarp {
            dx,
            dy,
            field: ROption::RSome(field),
        }
    }
    /// The local field as readers interpolate it ([`WarpField::dense`]).
    pub fn dense_field(&self) -> Option<std::borrow::Cow<'_, WarpField>> {
        self.field.as_ref().into_option().map(WarpField::dense)
    }
    /// A pure global shift.
    pub fn shift(dx: f32, dy: f32) -> FrameWarp {
        FrameWarp {
            dx,
            dy,
            field: ROption::RNone,
        }
    }
}

/// What an aligner returns: one warp per frame of its source, in source order.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Alignment {
    pub warps: RVec<FrameWarp>,
    /// Index (in the source) of the frame used as the reference, or the best
    /// frame when the reference is a mean of several.
    pub reference: u32,
}

#[cfg(test)]
mod field_tests {
    use super::*;

    #[test]
    fn a_refined_field_reads_as_its_nodes_refined_and_a_plain_one_as_itself() {
        let (c, r) = (4usize, 3usize);
        let dx: Vec<f32> = (0..c * r).map(|k| (k as f32 * 0.7).sin()).collect();
        let dy: Vec<f32> = (0..c * r).map(|k| (k as f32 * 0.3).cos()).collect();
        // Weights 0, 0, 1, 1 along each row: Catmull-Rom undershoots.
        let wt: Vec<f32> = (0..c * r).map(|k| (k % c >= 2) as u8 as f32).collect();
        let plain = WarpField::new(
            (c, r),
            (5.0, 7.0),
            (16.0, 16.0),
            [dx.clone(), dy.clone(), wt.clone()],
        );
        assert!(matches!(plain.dense(), std::borrow::Cow::Borrowed(_)));
        assert_eq!(plain.dense_dims(), (4, 3));
        let coarse = WarpField::refined(
            (c, r),
            (5.0, 7.0),
            (16.0, 16.0),
            [dx.clone(), dy.clone(), wt.clone()],
            2,
        );
        assert_eq!(coarse.dense_dims(), (7, 5));
        let d = coarse.dense();
        assert_eq!((d.cols, d.rows, d.refine), (7, 5, 1));
        assert_eq!((d.x0, d.y0, d.step_x, d.step_y), (5.0, 7.0, 8.0, 8.0));
        assert_eq!(d.dx.as_slice(), refine_nodes(&dx, c, r, 2).0.as_slice());
        assert_eq!(d.dy.as_slice(), refine_nodes(&dy, c, r, 2).0.as_slice());
        let w = refine_nodes(&wt, c, r, 2).0;
        assert!(
            w.iter().any(|v| !(0.0..=1.0).contains(v)),
            "no overshoot to clamp"
        );
        let clamped: Vec<f32> = w.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        assert_eq!(d.weight.as_slice(), clamped.as_slice());
        // The nodes keep their values; the field at a node is the node's.
        assert_eq!(d.dx[2 * 7 + 2], dx[4 + 1]);
        assert_eq!(d.sample(5.0 + 16.0, 7.0 + 16.0).0, dx[4 + 1]);
        let warp = FrameWarp::with_field(1.0, 2.0, coarse.clone());
        assert_eq!(*warp.dense_field().unwrap(), *d);
        assert!(FrameWarp::shift(1.0, 2.0).dense_field().is_none());
    }
}

#[cfg(test)]
mod device_tests {
    use super::*;

    #[test]
    fn buffer_order_groups_by_first_appearance_and_runs_follow_it() {
        let buf = |id| GpuBuffer { id, size: 64 };
        // Two frames per buffer, frame length 4 words.
        let dev = DeviceFrames {
            buffers: vec![buf(1), buf(2), buf(3)].into(),
            per_buffer: 2,
            slots: vec![5, 0, 3, 1, 2].into(),
        };
        let order = dev.in_buffer_order(&[0, 1, 2, 3, 4], 4);
        let got: Vec<(usize, u64, usize)> = order
            .iter()
            .map(|s| (s.index, s.buffer.id, s.offset))
            .collect();
        // Buffer 3 first (frame 0 = slot 5), then buffer 1, then buffer 2.
        assert_eq!(
            got,
            vec![(0, 3, 4), (1, 1, 0), (3, 1, 4), (2, 2, 4), (4, 2, 0)]
        );
        assert_eq!(
            DeviceFrames::runs(&order),
            vec![(buf(3), 0, 1), (buf(1), 1, 2), (buf(2), 3, 2)]
        );
        assert!(order.iter().all(|s| s.pos == s.index));
    }
}
