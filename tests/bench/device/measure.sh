#!/bin/bash
# GPU-machine measurement for issue 15, run by the `device` tool from the
# repository root:  bash tests/bench/device/measure.sh [40k]
#
# Needs, carried as ignored folders (see docs/BENCHMARKS.md, tenth session):
#   .gl/          the Vulkan loader debs (the device tool's README says how)
#   .dev/bin/     stripped jupiter-host, e2e and the plugins, built here with
#                 `--features jupiter-host/gpu`; optionally jupiter-host2,
#                 a second host to time against the first (same plugins);
#                 optionally upload_probe (`cargo build --release -p
#                 jupiter-host --features gpu --example upload_probe`): the
#                 copies into each host-visible memory type and the device's
#                 copies out of them
#   .dev/cap/     p100.ser.gz (the first 100 frames of planet-mono8, gzip -1)
#                 and planet-mono8.truth.tif
#   .dev/probe/   optional: probe, built here from probe.c
#                 (`gcc -O2 -static -pthread probe.c -o probe`): the page
#                 cache's read rate on 1, 4 and 16 threads (mmap, pread)
# Prints, per run: start-up ("device ready"), the upload's end, the output's
# time and the upload's trace; then the align steps, the last GPU run's
# timeline, the PSNR, the page cache's read rates, the upload probe and
# the kernels' times.
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
B=.dev/bin; D=/tmp/cap; T=.dev/cap/planet-mono8.truth.tif; mkdir -p $D
nproc; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
gunzip -c .dev/cap/p100.ser.gz > $D/p100.ser
$B/e2e --repeat-frames $D/p100.ser $D/p3k.ser 30
t() { grep -m1 "$1" /tmp/l | cut -c7-16; }
one() { # host device threads
  timeout 60 env JUPITER_GPU_TRACE=1 $B/$1 $2 --threads $3 -v run $D/p3k.ser --no-post --force -o /tmp/$1$2.tif > /tmp/l 2>&1
  echo "$1 $2 t$3 ready $(t 'device ready') uploaded $(t 'capture uploaded') out $(t 'output written') | $(grep -o '[0-9.]* s in writes.*' /tmp/l) | $(grep -o 'of the writes.*' /tmp/l) | $(grep -o 'upload of.*' /tmp/l)"
  cp /tmp/l /tmp/log$1$2
}
hosts=jupiter-host; [ -x $B/jupiter-host2 ] && hosts="jupiter-host jupiter-host2"
one jupiter-host --gpu 16 > /dev/null   # the driver's shader cache
for i in 1 2 3; do
  one jupiter-host --cpu 16
  for h in $hosts; do one $h --gpu 16; done
done
for f in /tmp/logjupiter-host*; do echo "== $f"; grep -E "steps|device measurement" $f | cut -c1-330; done
echo "== timeline of the last GPU run"; grep -E "^trace" /tmp/logjupiter-host--gpu
for h in $hosts; do $B/e2e --psnr /tmp/$h--gpu.tif $T; done
$B/e2e --psnr /tmp/jupiter-host--cpu.tif $T

dd if=$D/p3k.ser of=/dev/null bs=64M 2>&1 | tail -1
[ -x .dev/probe/probe ] && .dev/probe/probe $D/p3k.ser
[ -x $B/upload_probe ] && timeout 100 $B/upload_probe 64 2>&1 | grep -v XDG
JUPITER_GPU_TRACE=kernels $B/jupiter-host --gpu -q run $D/p3k.ser --no-post --force -o /tmp/k.tif 2>&1 | grep -E "gpu trace: +[a-z_]+:"
[ "$1" = 40k ] || exit 0
$B/e2e --repeat-frames $D/p100.ser $D/p40k.ser 400
for dev in --gpu --cpu; do
  /usr/bin/time -f "40k $dev wall %e s rss %M KB" timeout 120 $B/jupiter-host $dev -q run $D/p40k.ser --no-post --force -o /tmp/40k.tif
  $B/e2e --psnr /tmp/40k.tif $T
done
