//! Memory bound of `stack-sigma-clip`: the peak heap use while stacking is the output
//! plus one band of all frames (threads = 1), never the frame set. A counting
//! global allocator records the peak; the frames are computed on the fly (see
//! `jupiter_testkit::reference::check_memory_bound`). One test per binary: the
//! allocator's counters are process-wide.

use jupiter_plugin_api::testing::CountingAlloc;
use jupiter_plugin_stack_sigma_clip::cpu::stack;
use jupiter_plugin_stack_sigma_clip::params::SigmaClipParams;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[test]
fn peak_memory_is_output_plus_one_band_of_all_frames() {
    jupiter_testkit::reference::check_memory_bound(
        &ALLOC,
        "stack-sigma-clip",
        |ctx, frames, req| stack(ctx, frames, req, &SigmaClipParams::default()),
    );
}
