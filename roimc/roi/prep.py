"""What both ROI methods share: layout and bit-depth handling, the reduced working scale,
the conservative post-processing, and the way back to a full-resolution mask.

numpy and scipy only: the classic method and the tests of the helpers never import torch."""
import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError

WORK_SIZE = 256          # longest side of the working image (block means of the input)


def frames_of(array, channels_last=None):
    """Split an image into 2-D gray float32 frames, (F, H, W).

    Layouts as in roimc.encode: (H, W), (H, W, C) with C = 1..4, (F, H, W), (F, H, W, C).
    A 3-D array whose last axis has 1-4 entries is read as channels unless channels_last is
    False. Colour becomes the maximum over the colour channels (alpha is dropped), so that a
    coloured overlay or a red fundus counts as signal. Any integer depth (1-16 bits, signed
    or not), bool and finite floats are accepted."""
    a = np.asarray(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.kind not in "iuf":
        raise InputError(f"cannot detect an ROI in a {a.dtype} array")
    if a.ndim == 2:
        a = a[None, :, :, None]
    elif a.ndim == 3:
        if channels_last is None:
            channels_last = a.shape[-1] <= 4
        a = a[None] if channels_last else a[..., None]
    elif a.ndim == 4:
        pass
    else:
        raise InputError(f"cannot detect an ROI in an array of shape {a.shape} "
                         f"(use (H, W), (H, W, C), (F, H, W) or (F, H, W, C))")
    if a.shape[-1] > 4 or 0 in a.shape:
        raise InputError(f"cannot detect an ROI in an array of shape {np.asarray(array).shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise InputError("the image holds NaN or infinite samples")
    c = a.shape[-1]
    if c in (2, 4):            # gray + alpha, RGBA: drop alpha
        a = a[..., :c - 1]
    return a.max(axis=-1).astype(np.float32) if a.shape[-1] > 1 else a[..., 0].astype(np.float32)


def block_factor(shape, size=WORK_SIZE):
    """The integer block edge that brings the longest side to at most `size`."""
    return max(1, -(-max(shape) // size))


def downscale(gray, k):
    """Block means of k x k pixels (the edge replicated to a multiple of k)."""
    if k == 1:
        return gray.astype(np.float32, copy=False)
    h, w = gray.shape
    ph, pw = -h % k, -w % k
    if ph or pw:
        gray = np.pad(gray, ((0, ph), (0, pw)), mode="edge")
    H, W = gray.shape
    return gray.reshape(H // k, k, W // k, k).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def upscale(mask, k, shape):
    """Nearest-neighbour back to the full resolution `shape` (blocks of k x k)."""
    if k > 1:
        mask = np.repeat(np.repeat(mask, k, axis=0), k, axis=1)
    return np.ascontiguousarray(mask[:shape[0], :shape[1]])


def normalise(small):
    """Map robust percentiles (0.5 % and 99.5 %) of the image to 0 and 1 (clipped).
    Returns None for an image without contrast."""
    lo, hi = np.percentile(small, [0.5, 99.5])
    if hi - lo <= 1e-6 * max(1.0, abs(hi)):
        lo, hi = float(small.min()), float(small.max())
        if hi - lo <= 1e-6 * max(1.0, abs(hi)):
            return None
    return np.clip((small - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def disk(radius):
    r = int(radius)
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r + r   # a little rounder than the strict disk


def margin_px(shape):
    """Safety margin at the working scale: 1.5 % of the longest side, at least 2 pixels
    (which also covers the block quantisation of the way back to full resolution)."""
    return max(2, int(round(0.015 * max(shape))))


def conservative(mask, close_radius=None, margin=None):
    """Close gaps, fill holes and dilate a safety margin: the ROI may take in background,
    never leave out anatomy. Works on the working-scale boolean mask."""
    if not mask.any():
        return mask
    shape = mask.shape
    if close_radius is None:
        close_radius = max(1, int(round(0.02 * max(shape))))
    if margin is None:
        margin = margin_px(shape)
    pad = close_radius + 1   # closing near the edge must not invent background there
    m = np.pad(mask, pad, mode="edge")
    m = ndi.binary_closing(m, structure=disk(close_radius))[pad:-pad, pad:-pad]
    m = ndi.binary_fill_holes(m | mask)
    if margin > 0:
        m = ndi.binary_dilation(m, structure=disk(margin))
    return ndi.binary_fill_holes(m)
