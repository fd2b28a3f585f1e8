"""Near-lossless mode: every decoded sample within a bound of the original, the bound being
`max_error` (N) outside the ROI and `roi_max_error` (M) inside it (spec/rmc-v1.md, 8.1, 8.2,
14.9, 16A.10).

The bound is enforced inside the C core's prediction loop: residuals are quantised with step
2 * bound + 1 and prediction and contexts use the decoded samples, in coder 3's form (blended
prediction with a fitted linear predictor, context mixing; format version 1.2), coder 4's
(coder 3 with the second model and the reference plane's sample as a predictor, its extreme
levels reaching 0 and the largest value so that those decode exactly, and an adaptive
least-squares sub-predictor; version 1.14, or 1.6 without that sub-predictor, or 1.5 without
the extreme levels either) or coder 0's (JPEG-LS near-lossless). Channels are coded without the colour transform, which
would not keep a bound per channel, so the bound holds on every channel. A tile that the coder
would expand is stored raw (coder 2: exact samples). The bounds go into the NEAR chunk, the
mask into MASK; both are coder-agnostic: the TILE coder byte says which coder's near-lossless
form a tile uses. Chunk GRAD (version 1.10; coders 3 and 4) holds a grade G (0..15), which
raises the background bound to N + 1 on G/16 of the background in a regular 4 x 4 pattern,
for the rates between two bounds, and a dead zone D (0..255): the encoder rounds background
residuals toward zero by up to D more, so those samples are within D more of the original
(fewer bits at a small cost in error; decoding does not depend on D).
"""
import struct

import numpy as np

from .. import core
from ..container import GRAD, MASK, NEAR, TILE, Header
from ..errors import CorruptDataError, RmcError, UnsupportedError
from ..roi_mask import CONTEXT_VERSION, METHOD_CONTEXT, mask_method, pack_mask, unpack_mask
from . import predictor
from .lossless import _TILE_HEAD, _run, _tiles, tile_stream

_NEAR = struct.Struct(">HH")
CODERS = (core.CODER_GOLOMB, core.CODER_RAW, core.CODER_CM, core.CODER_CM2)
CM_VERSION = (1, 2)     # files with a coder-3 near-lossless tile (spec 9, 16A.10)
CM2_VERSION = (1, 5)    # files with a coder-4 near-lossless tile (spec 9, 16A.12)
GRADE_VERSION = (1, 10)       # files with a GRAD chunk (spec 8.7)
GRADES = 16
MAX_DEADZONE = 255
# (y % 4, x % 4) of a tile's sample -> the grades above this raise its background bound
GRADE_ORDER = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])


def raised(height, width, grade):
    """(H, W) bool: the tile positions whose background bound the grade raises by 1."""
    y, x = np.ogrid[:height, :width]
    return GRADE_ORDER[y % 4, x % 4] < grade


def tile_bounds(height, width, mask, n, m, grade, deadzone=0):
    """(H, W) int bound of every sample of a tile: m where the mask is set, else n + deadzone
    (+ 1 where the grade raises it)."""
    bound = n + deadzone + raised(height, width, grade).astype(np.int64)
    return bound if mask is None else np.where(mask != 0, m, bound)


def version_of(chunks, otherwise):
    """The version that the TILE, MASK and GRAD chunks need (coder 4: 1.14, coder 3: 1.2, a
    method-1 MASK: 1.8, GRAD: 1.10), or `otherwise` where that is later."""
    used = {payload[8] for ctype, payload in chunks if ctype == TILE}
    version = tuple(otherwise)
    if any(ctype == GRAD for ctype, _ in chunks):
        version = max(GRADE_VERSION, version)
    if any(ctype == MASK and mask_method(payload) == METHOD_CONTEXT for ctype, payload in chunks):
        version = max(CONTEXT_VERSION, version)
    if core.CODER_CM2 in used:
        return max(core.CM2_OLS_VERSION, version)
    if core.CODER_CM in used:
        return max(CM_VERSION, version)
    return version


def pack_bounds(max_error, roi_max_error):
    return _NEAR.pack(max_error, roi_max_error)


def placed(chunks, ctype):
    """The indices of the chunks of type `ctype`: at most one, before the first TILE (E41;
    NEAR, MASK, GRAD and FILT)."""
    found = [i for i, c in enumerate(chunks) if c.ctype == ctype]
    if len(found) > 1:
        raise CorruptDataError(f"file has {len(found)} {ctype.decode()} chunks")
    first_tile = next((i for i, c in enumerate(chunks) if c.ctype == TILE), len(chunks))
    if found and found[0] > first_tile:
        raise CorruptDataError(f"{ctype.decode()} chunk must come before the first TILE chunk")
    return found


def read_bounds(chunks, header: Header):
    """(N, M, mask or None, grade, dead zone) of a near-lossless or hybrid file, every rule of
    the spec checked: one NEAR and at most one MASK and one GRAD, all before the first TILE;
    bounds within the sample range; M == N without a mask; the mask of the image's size;
    GRAD in a near-lossless file of version 1.10 on, a grade up to 15 and a dead zone D, not
    both 0, with N + D (+ 1 with a grade) within the range (0, 0 without GRAD)."""
    near, masks, grads = placed(chunks, NEAR), placed(chunks, MASK), placed(chunks, GRAD)
    if not near:
        raise CorruptDataError("a near-lossless file needs one NEAR chunk, found none")
    payload = chunks[near[0]].payload
    if len(payload) != _NEAR.size:
        raise CorruptDataError(f"NEAR chunk has {len(payload)} bytes, expected {_NEAR.size}")
    n, m = _NEAR.unpack(payload)
    top = (1 << header.bits) - 1
    if n > top or m > top:
        raise CorruptDataError(f"NEAR chunk declares bounds {n}, {m} above {top}, the largest "
                               f"difference of {header.bits}-bit samples")
    if header.transform != "none":
        raise CorruptDataError("a near-lossless file must not use the colour transform")
    mask = None
    if masks:
        mask = unpack_mask(chunks[masks[0]].payload, header.height, header.width,
                           header.version)
    elif m != n:
        raise CorruptDataError("NEAR chunk declares an ROI bound but the file has no MASK")
    grade = deadzone = 0
    if grads:
        payload = chunks[grads[0]].payload
        if header.mode != "near-lossless":
            raise UnsupportedError(f"chunk GRAD is not defined for {header.mode} files")
        if header.version < GRADE_VERSION:
            raise UnsupportedError(f"GRAD chunk in a file of version "
                                   f"{header.version[0]}.{header.version[1]} (it needs "
                                   f"{GRADE_VERSION[0]}.{GRADE_VERSION[1]})")
        if len(payload) != 2 or payload[0] >= GRADES or payload == b"\0\0":
            raise CorruptDataError("GRAD chunk must hold a grade from 0 to 15 and a dead "
                                   "zone, not both 0")
        grade, deadzone = payload[0], payload[1]
        if n + deadzone + (grade > 0) > top:
            raise CorruptDataError(f"GRAD chunk raises the bound {n} above {top}, the largest "
                                   f"difference of {header.bits}-bit samples")
    return n, m, mask, grade, deadzone


def refuse_chunks(chunks, header: Header):
    """NEAR, MASK and GRAD belong to near-lossless (and NEAR, MASK to hybrid) files only."""
    for c in chunks:
        if c.ctype in (NEAR, MASK, GRAD):
            raise UnsupportedError(f"chunk {c.ctype.decode()} is not defined for "
                                   f"{header.mode} files")


def encode(samples, header: Header, coder, mask, max_error, roi_max_error, threads=None,
           fit_samples=predictor.DEFAULT_SAMPLES, grade=0, deadzone=0):
    """Encode (F, H, W, C) coded samples with the bounds (N outside the mask, M inside;
    N + 1 where the grade, 0..15, raises it; the background's residuals rounded toward zero
    by up to `deadzone` more). Coder 3 fits a linear predictor per tile and plane on the
    original samples (up to `fit_samples` of them, 0: none). Returns (chunks: NEAR, GRAD if
    graded or with a dead zone, MASK if any, the TILE chunks; the decoded coded samples)."""
    if coder not in CODERS:
        raise UnsupportedError(f"coder {coder} has no near-lossless form")
    if (grade or deadzone) and coder == core.CODER_GOLOMB:
        raise UnsupportedError("coder 0 has no graded near-lossless form")
    bits = [header.bits] * header.channels
    recon = np.empty(samples.shape, dtype=np.int32)
    m8 = None if mask is None else np.ascontiguousarray(mask, dtype=np.uint8)

    def job(f, index, y0, y1, x0, x1):
        def run():
            t = np.ascontiguousarray(samples[f, y0:y1, x0:x1, :].transpose(2, 0, 1),
                                     dtype=np.int32)
            tm = None if m8 is None else m8[y0:y1, x0:x1]
            if coder in (core.CODER_CM, core.CODER_CM2):
                weights = [predictor.fit(t, p, fit_samples) if fit_samples else None
                           for p in range(t.shape[0])]
                stream, rec = core.encode_tile_near_cm(t, bits, weights, tm, max_error,
                                                       roi_max_error, coder, grade=grade,
                                                       deadzone=deadzone)
            else:
                stream, rec = core.encode_tile_near(t, bits, coder, tm, max_error,
                                                    roi_max_error, grade=grade,
                                                    deadzone=deadzone)
            used = coder
            if len(stream) > -(-t.shape[1] * t.shape[2] * sum(bits) // 8):
                stream, rec = core.encode_tile_near(t, bits, core.CODER_RAW, tm, max_error,
                                                    roi_max_error, grade=grade)
                used = core.CODER_RAW
            bound = tile_bounds(y1 - y0, x1 - x0, tm, max_error, roi_max_error, grade, deadzone)
            if np.any(np.abs(rec - t) > bound):      # the C core checks this too
                raise RmcError("internal error: near-lossless bound exceeded")
            recon[f, y0:y1, x0:x1, :] = rec.transpose(1, 2, 0)
            return TILE, _TILE_HEAD.pack(f, index, used) + stream
        return run

    jobs = [job(f, *tile) for f in range(header.frames) for tile in _tiles(header)]
    chunks = [(NEAR, pack_bounds(max_error, roi_max_error))]
    if grade or deadzone:
        chunks.append((GRAD, bytes([grade, deadzone])))
    if mask is not None:
        chunks.append((MASK, pack_mask(mask)))
    chunks += _run(jobs, threads)
    return chunks, recon


def decode(chunks, header: Header, view, bounds, threads=None):
    """Decode a near-lossless file's tiles into `view` ((F, H, W, C) of the output type);
    bounds = read_bounds(...), and the caller has run lossless.check() before allocating."""
    n, m, mask, grade, _ = bounds    # the dead zone is the encoder's: decoding ignores it
    bits = [header.bits] * header.channels
    m8 = None if mask is None else mask.astype(np.uint8)
    tiles = [c for c in chunks if c.ctype == TILE]
    layout = list(_tiles(header))

    def job(chunk, f, index, y0, y1, x0, x1):
        def run():
            coder, stream = tile_stream(chunk, f, index)
            need = {core.CODER_CM: CM_VERSION, core.CODER_CM2: CM2_VERSION}.get(coder)
            if need and header.version < need:
                raise CorruptDataError(f"tile chunk at byte {chunk.offset} uses coder {coder} "
                                       f"in a {header.mode} file of version "
                                       f"{header.version[0]}.{header.version[1]}")
            if grade and coder == core.CODER_GOLOMB:
                raise UnsupportedError(f"tile chunk at byte {chunk.offset} uses coder 0, which "
                                       f"has no graded near-lossless form")
            tm = None if m8 is None else m8[y0:y1, x0:x1]
            form = core.near_form(coder, header.version)
            t = core.decode_tile_near(stream, x1 - x0, y1 - y0, bits, coder, tm, n, m, form,
                                      grade)
            if header.offset:
                t += header.offset
            view[f, y0:y1, x0:x1, :] = t.transpose(1, 2, 0)
        return run

    it = iter(tiles)
    jobs = [job(next(it), f, *tile) for f in range(header.frames) for tile in layout]
    _run(jobs, threads)
