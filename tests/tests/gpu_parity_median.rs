//! CPU vs GPU parity of the `stack-median` stage through its `Stage` entry
//! (the host's GPU offered or not): mono and RGB, odd sizes, 9 frames (sort
//! path) and 66 frames (radix selection). Runs with `--features gpu`; in CI
//! on lavapipe. Tolerance: 1e-5 absolute (both select the same samples; only
//! the interpolation arithmetic may differ in the last bits).
#![cfg_attr(not(feature = "gpu"), allow(dead_code, unused_imports))]

use jupiter_plugin_api::*;
use jupiter_plugin_stack_median::StackMedian;
use jupiter_tests::*;

fn stack_median_stage_gpu_matches_cpu() {
    let (gpu_be, cpu_be) = backends();
    for (w, h, c, n) in [(27usize, 19usize, 1usize, 9usize), (18, 23, 3, 66)] {
        let mem = texture_frames((w, h, c), n, 0);
        let warps = scattered_shifts(n, (3, 7, 0.45, -1.3), (5, 6, 0.33, -0.9));
        let req = StackRequest::new(warps);
        for params in ["{}", r#"{"interpolation": "bilinear"}"#] {
            let cpu = StackMedian
                .stack(&stage_ctx(&cpu_be), &mem.as_ref(), &req, params)
                .unwrap();
            assert!(cpu.device.is_none());
            let g = stage_ctx(&gpu_be);
            let gpu = StackMedian.stack(&g, &mem.as_ref(), &req, params).unwrap();
            assert!(gpu.device.is_some(), "the GPU path should have run");
            let d = max_abs_diff(&cpu.data, &host_data(&g, gpu));
            assert!(
                d <= 1e-5,
                "{w}×{h}×{c}, {n} frames, {params}: max |cpu - gpu| = {d:e}"
            );
        }
    }
}

jupiter_tests::gpu_main!(gpu: [stack_median_stage_gpu_matches_cpu]);
