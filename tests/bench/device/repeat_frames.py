# Writes a SER whose frames are the first FIRST frames of SRC repeated TIMES
# times (header frame count set to match; no timestamp trailer):
#   python3 repeat_frames.py SRC DST FIRST TIMES
import sys, struct
src, dst, first, times = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(src, 'rb') as f:
    h = bytearray(f.read(178))
    w, hh, depth, n = struct.unpack_from('<iiii', h, 26)
    planes = 3 if struct.unpack_from('<i', h, 18)[0] >= 100 else 1
    fb = w * hh * planes * (2 if depth > 8 else 1)
    first = min(first, n)
    data = f.read(fb * first)
struct.pack_into('<i', h, 38, first * times)
with open(dst, 'wb') as o:
    o.write(h)
    for _ in range(times):
        o.write(data)
