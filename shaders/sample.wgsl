// sample.wgsl — sub-pixel sampling, as the CPU path's kit::warp: bilinear
// (interp = 0), Catmull-Rom (interp = 1) or the sharp cubic (interp = 2). Prepended (after common.wgsl) to
// the kernels that resample frames; each of them defines
// `at(base, x, y, c) -> f32`, its edge rule for the source samples.
// Bindings: none. Workgroup: none (helpers only).

fn sample(base: u32, sx: f32, sy: f32, c: u32, interp: u32) -> f32 {
    let fx = floor(sx);
    let fy = floor(sy);
    let tx = sx - fx;
    let ty = sy - fy;
    let ix = i32(fx);
    let iy = i32(fy);
    if (interp == 0u) {
        let a = at(base, ix, iy, c) * (1.0 - tx) + at(base, ix + 1, iy, c) * tx;
        let b = at(base, ix, iy + 1, c) * (1.0 - tx) + at(base, ix + 1, iy + 1, c) * tx;
        return a * (1.0 - ty) + b * ty;
    }
    var wx = cubic(tx);
    var wy = cubic(ty);
    if (interp == 2u) {
        wx = sharp_cubic(tx);
        wy = sharp_cubic(ty);
    }
    var acc = 0.0;
    for (var j = 0; j < 4; j++) {
        let yy = iy + j - 1;
        let row = wx.x * at(base, ix - 1, yy, c) + wx.y * at(base, ix, yy, c) + wx.z * at(base, ix + 1, yy, c) + wx.w * at(base, ix + 2, yy, c);
        acc += wy[j] * row;
    }
    return acc;
}
