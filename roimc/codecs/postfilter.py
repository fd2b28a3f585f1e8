"""The post-filter of the background (chunk FILT, spec 8.8): of a near-lossless file
(version 1.11), and of the network's samples in lossy and hybrid files (version 1.12).

After the samples are decoded, every sample outside the ROI (every sample without a MASK) is
corrected by a point-symmetric 5 x 5 linear filter of the decoded samples around it, in
integer arithmetic: taps of 8 bits and a bias of 16 bits at a power-of-two scale per
channel, the correction rounded and clipped to at most `clip` sample units (clip 0, lossy
and hybrid files only: not clipped). The encoder fits the taps by least squares on its
original samples, so the filter removes part of the quantisation or network error; in a
near-lossless file those samples are then within their bound plus `clip` of the original.
ROI samples are never changed.
"""
import struct

import numpy as np

from ..container import FILT, LATN
from ..errors import CorruptDataError, UnsupportedError
from .near_lossless import placed

VERSION = (1, 11)          # near-lossless files with a FILT chunk
NEURAL_VERSION = (1, 12)   # lossy and hybrid files with one
# (dy, dx) of the taps; tap k weighs v[y + dy][x + dx] + v[y - dy][x - dx] - 2 v[y][x]
OFFSETS = ((0, 1), (0, 2), (1, -2), (1, -1), (1, 0), (1, 1), (1, 2),
           (2, -2), (2, -1), (2, 0), (2, 1), (2, 2))
MAX_CLIP = 15
MAX_SHIFT = 15
CLIPS = (1, 2, 3, 4)      # the clips the encoder tries in near-lossless files
UNCLIPPED = (0,)          # and in lossy and hybrid files
FIT_SAMPLES = 1 << 18     # samples per channel, at most, in the encoder's fit
_CHANNEL = struct.Struct(">B12bh")   # shift, taps, bias
_BAND = 256                          # rows filtered at a time


def pack(clip, channels):
    """FILT payload: the clip, then (shift, taps, bias) of each channel."""
    return bytes([clip]) + b"".join(_CHANNEL.pack(s, *taps, b) for s, taps, b in channels)


def unpack(payload, header):
    """(clip, [(shift, taps, bias)] per channel) of a FILT payload, checked (E48): a clip
    of 1 to 15, or 0 (none) in lossy and hybrid files."""
    size = 1 + _CHANNEL.size * header.channels
    if len(payload) != size:
        raise CorruptDataError(f"FILT chunk has {len(payload)} bytes, expected {size}")
    clip = payload[0]
    least = 1 if header.mode == "near-lossless" else 0
    if not least <= clip <= MAX_CLIP:
        raise CorruptDataError(f"FILT chunk declares a clip of {clip} ({least} to {MAX_CLIP}"
                               f" in {header.mode} files)")
    channels = []
    for c in range(header.channels):
        shift, *rest = _CHANNEL.unpack_from(payload, 1 + c * _CHANNEL.size)
        if shift > MAX_SHIFT:
            raise CorruptDataError(f"FILT chunk declares a shift of {shift} (0 to {MAX_SHIFT})")
        channels.append((shift, tuple(rest[:-1]), rest[-1]))
    return clip, channels


def read(chunks, header):
    """The checked filter of a file, or None: at most one FILT, before the first TILE and
    the first LATN (E41), in a near-lossless file of version 1.11 on or a lossy or hybrid
    file of version 1.12 on (E49; in a lossless file E40)."""
    if not any(c.ctype == FILT for c in chunks):
        return None
    if header.mode == "lossless":
        raise UnsupportedError(f"chunk FILT is not defined for {header.mode} files")
    need = VERSION if header.mode == "near-lossless" else NEURAL_VERSION
    if header.version < need:
        raise UnsupportedError(f"FILT chunk in a {header.mode} file of version "
                               f"{header.version[0]}.{header.version[1]} (it needs "
                               f"{need[0]}.{need[1]})")
    at = placed(chunks, FILT)[0]
    if any(c.ctype == LATN for c in chunks[:at]):
        raise CorruptDataError("FILT chunk must come before the first LATN chunk")
    return unpack(chunks[at].payload, header)


def _correction(padded, y0, y1, width, shift, taps, bias):
    """Correction of rows y0..y1-1 of a plane padded by 2 on every side (edge samples
    repeated), before the clip. In int32, which holds every sum of spec 8.8 exactly: for
    samples of up to 16 bits each term is below 2^17 in size, so |t| + 2^14 stays below
    12 * 127 * 2^17 + 2^15 + 2^14 < 2^31."""
    centre = padded[2 + y0:2 + y1, 2:2 + width]
    t = np.full(centre.shape, bias, np.int32)
    for w, (dy, dx) in zip(taps, OFFSETS):
        if w:
            a = padded[2 + y0 + dy:2 + y1 + dy, 2 + dx:2 + dx + width]
            b = padded[2 + y0 - dy:2 + y1 - dy, 2 - dx:2 - dx + width]
            t += w * (a + b - 2 * centre)
    return (t + ((1 << shift) >> 1)) >> shift


def corrections(plane, shift, taps, bias):
    """The filter's corrections of a decoded plane ((H, W) ints of up to 16 bits), before
    the clip, as int32."""
    plane = np.asarray(plane, np.int32)
    padded = np.pad(plane, 2, mode="edge")
    out = np.empty(plane.shape, np.int32)
    height, width = plane.shape
    for y0 in range(0, height, _BAND):
        y1 = min(height, y0 + _BAND)
        out[y0:y1] = _correction(padded, y0, y1, width, shift, taps, bias)
    return out


def filtered(plane, mask, maxval, clip, shift, taps, bias, least=0):
    """A decoded plane ((H, W) ints in least..maxval) after the filter, as int64: the
    samples outside `mask` (all where mask is None) corrected (clipped to +-clip unless clip
    is 0), clamped to least..maxval."""
    plane = np.asarray(plane, np.int64)
    corr = corrections(plane, shift, taps, bias)
    if clip:
        corr = np.clip(corr, -clip, clip)
    out = np.clip(plane + corr, least, maxval)
    return out if mask is None else np.where(mask, plane, out)


def apply(view, header, mask, filt, ranges=None):
    """Filter a decoded image in place: `view` (F, H, W, C) of the output type, holding
    coded samples plus header.offset; mask (H, W) bool or None; ranges: the (lo, hi) of
    each frame that the results are clamped to (lossy and hybrid files: their LATN's;
    None: 0 to the largest coded value)."""
    clip, channels = filt
    for f in range(header.frames):
        least, most = (0, (1 << header.bits) - 1) if ranges is None else ranges[f]
        for c, (shift, taps, bias) in enumerate(channels):
            plane = view[f, :, :, c].astype(np.int64) - header.offset
            view[f, :, :, c] = filtered(plane, mask, most, clip, shift, taps, bias, least) \
                + header.offset


def _terms(plane, rows, cols):
    """The twelve tap terms at the positions (rows, cols) of a plane, as int64 columns."""
    padded = np.pad(np.asarray(plane, np.int32), 2, mode="edge")
    stride = padded.shape[1]
    flat = padded.ravel()
    at = (rows + 2) * stride + cols + 2
    centre = 2 * flat[at]
    out = np.empty((len(at), len(OFFSETS)), np.int64)
    for k, (dy, dx) in enumerate(OFFSETS):
        d = dy * stride + dx
        out[:, k] = flat[at + d] + flat[at - d] - centre
    return out


def _quantise(weights):
    """(shift, taps, bias) of least-squares weights (12 taps, then the bias): the largest
    shift that keeps every tap within 8 bits."""
    taps, bias = weights[:-1], weights[-1]
    top = float(np.max(np.abs(taps)))
    shift = MAX_SHIFT if top <= 0 else int(np.clip(np.floor(np.log2(127.5 / top)), 0,
                                                      MAX_SHIFT))
    q = tuple(int(v) for v in np.clip(np.round(taps * (1 << shift)), -127, 127))
    b = int(np.clip(np.round(bias * (1 << shift)), -32768, 32767))
    return shift, q, b


def fit(original, recon, mask, bits, clips=CLIPS, ranges=None):
    """Fit the filter of a decoded image: original and recon (F, H, W, C) coded samples,
    mask (H, W) bool or None, ranges as for apply. The taps come from least squares on up
    to FIT_SAMPLES samples outside the mask per channel (a regular subset), and so does the
    clip, the one of `clips` (0: none) with the least squared error there. Returns (FILT
    payload, filtered recon), or (None, recon) when no clip lowers that error."""
    frames, height, width, channels = recon.shape
    if ranges is None:
        ranges = [(0, (1 << bits) - 1)] * frames
    outside = np.ones((height, width), bool) if mask is None else ~np.asarray(mask, bool)
    rows, cols = np.nonzero(outside)
    if rows.size == 0:
        return None, recon
    step = max(1, -(-rows.size * frames // FIT_SAMPLES))
    params, subsets = [], []
    for c in range(channels):
        terms, dec, orig, least, most = [], [], [], [], []
        for f in range(frames):
            r, k = rows[f % step::step], cols[f % step::step]
            terms.append(_terms(recon[f, :, :, c], r, k))
            dec.append(recon[f, r, k, c].astype(np.int64))
            orig.append(original[f, r, k, c].astype(np.int64))
            least.append(np.full(r.size, ranges[f][0], np.int64))
            most.append(np.full(r.size, ranges[f][1], np.int64))
        terms, dec, orig = np.concatenate(terms), np.concatenate(dec), np.concatenate(orig)
        least, most = np.concatenate(least), np.concatenate(most)
        # the normal equations, exact although in float64 (|term| < 2^17, |orig - dec| <
        # 2^16, at most 2^18 samples: every partial sum is an integer below 2^53), so that
        # only the 13 x 13 solve rounds
        x = np.concatenate([terms, np.ones((len(terms), 1))], 1)
        gram, rhs = x.T @ x, x.T @ (orig - dec).astype(np.float64)
        params.append(_quantise(np.linalg.lstsq(gram, rhs, rcond=None)[0]))
        shift, taps, bias = params[-1]
        corr = (terms @ np.array(taps, np.int64) + bias + ((1 << shift) >> 1)) >> shift
        subsets.append((orig, dec, corr, least, most))

    def error(clip):   # on the subsets; clip None: unfiltered, 0: unclipped
        if clip is None:
            return sum(float(np.sum((o - d).astype(np.float64) ** 2))
                       for o, d, *_ in subsets)
        return sum(float(np.sum((o - np.clip(d + (np.clip(k, -clip, clip) if clip else k),
                                             lo, hi)).astype(np.float64) ** 2))
                   for o, d, k, lo, hi in subsets)
    best, best_err = None, error(None)
    for clip in clips:
        err = error(clip)
        if err < best_err:
            best, best_err = clip, err
    if best is None:
        return None, recon
    m = None if mask is None else np.asarray(mask, bool)
    out = np.empty_like(recon)
    for f in range(frames):
        for c, (shift, taps, bias) in enumerate(params):
            out[f, :, :, c] = filtered(recon[f, :, :, c], m, ranges[f][1], best, shift, taps,
                                       bias, ranges[f][0])
    return pack(best, params), out
