"""From coded samples to the autoencoder's [0, 1] planes and back (numpy only).

A frame's samples are scaled by the frame's own range [lo, hi] (stored in the file), so a
12-bit CT that uses 1,800 levels fills the network's input like an 8-bit image. Gray frames give
one plane; colour frames give Y = (R + 2G + B)/4 and the chroma planes (B - G)/2 + 1/2 and
(R - G)/2 + 1/2 of the scaled samples; a fourth channel (alpha) or the second of two is a plane
of its own."""
import numpy as np


def frame_range(frame):
    """(lo, hi) over all channels of an (H, W, C) frame of coded samples."""
    return int(frame.min()), int(frame.max())


def to_planes(frame, lo, hi):
    """(P, H, W) float32 planes in [0, 1] of an (H, W, C) frame of coded samples."""
    x = (frame.astype(np.float32) - lo) / max(hi - lo, 1)
    c = x.shape[-1]
    if c < 3:
        return np.ascontiguousarray(x.transpose(2, 0, 1))
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    planes = [(r + 2 * g + b) / 4, (b - g) / 2 + 0.5, (r - g) / 2 + 0.5]
    planes += [x[..., k] for k in range(3, c)]
    return np.stack(planes).astype(np.float32)


def from_planes(planes, channels, lo, hi):
    """(H, W, C) coded samples (int32, rounded and clamped to the frame's range [lo, hi]) of
    (P, H, W) planes."""
    p = planes.astype(np.float32)
    if channels < 3:
        x = p.transpose(1, 2, 0)
    else:
        y, cb, cr = p[0], p[1] - 0.5, p[2] - 0.5
        g = y - (cb + cr) / 2
        x = np.stack([2 * cr + g, g, 2 * cb + g] + [p[k] for k in range(3, channels)], -1)
    v = np.rint(x * max(hi - lo, 1) + lo) if hi > lo else np.full(x.shape, lo, np.float32)
    return np.clip(v, lo, hi).astype(np.int32)
