"""Region-of-interest masks: what a user gives (a mask image or array, rectangles) and the
payload of the MASK chunk (spec/rmc-v1.md, 8.2).

A mask is one (H, W) plane for the whole image, shared by its frames and channels; a sample
is in the ROI where the mask is non-zero. Rules for a user's mask:

* its height and width are the image's (else InputError);
* it is binary: its values lie in {0, 1} or in {0, 255} (a boolean array is fine); any other
  value is an InputError, so that a grey-level image given by mistake is not read as a mask;
* an empty mask (no ROI sample) and an all-ROI mask are accepted: every sample then has the
  background bound, or every sample the ROI bound; the mask is stored all the same;
* rectangles "x,y,w,h[;x,y,w,h...]" (or a list of (x, y, w, h) tuples) of whole pixels, x and
  y from the top-left corner, w, h >= 1, each inside the image (else InputError); their
  union is the ROI.

The MASK payload: u32 width, u32 height, u8 method, then the data. Method 0: the
brotli-compressed LEB128 run lengths of the mask XORed with the row above (row 0 as it is), in
raster order, starting with a run of zeros (possibly empty), each later run at least 1, the
runs adding up to W * H. Method 1 (version 1.8): the mask coder's stream (spec 16E: each pixel
coded from three templates of its causal neighbours, mixed). The encoder keeps the shorter;
method 0 on a tie, so that files whose mask gains nothing stay readable by 1.0-1.7 readers.
"""
import os
import re
import struct

import numpy as np

from .errors import CorruptDataError, InputError, UnsupportedError

_HEAD = struct.Struct(">IIB")
METHOD_RUNS_BROTLI = 0
METHOD_CONTEXT = 1
CONTEXT_VERSION = (1, 8)    # files with a method-1 MASK chunk
_RECTS = re.compile(r"^\s*\d+\s*(,\s*\d+\s*){3}(;\s*\d+\s*(,\s*\d+\s*){3})*;?\s*$")


# ----------------------------------------------------------------------------- user masks

def parse_roi(roi, height, width):
    """An (H, W) boolean mask from a user's ROI: None, a path to a mask image, a rectangles
    string "x,y,w,h[;...]", a list of (x, y, w, h) tuples, or an array."""
    if roi is None:
        return None
    if isinstance(roi, (str, os.PathLike)):
        text = os.fspath(roi)
        if text == "auto":
            return _auto_roi()
        if _RECTS.match(text):
            rects = [tuple(int(v) for v in part.split(","))
                     for part in text.replace(" ", "").strip(";").split(";")]
            return rectangles_mask(rects, height, width)
        return mask_from_array(_read_mask_image(text), height, width, what=text)
    if isinstance(roi, (list, tuple)) and roi and all(
            isinstance(r, (list, tuple)) for r in roi):
        return rectangles_mask(roi, height, width)
    return mask_from_array(roi, height, width)


def _auto_roi():
    try:
        from . import roi as _roi  # noqa: F401  (the automatic ROI model, a later version)
    except ImportError:
        raise UnsupportedError("--roi auto (automatic ROI) is not available in this version: "
                               "give a mask image or rectangles x,y,w,h") from None
    raise UnsupportedError("--roi auto is not wired to this encoder yet: give a mask image")


def _read_mask_image(path):
    if not os.path.exists(path):
        raise InputError(f"{path}: no such mask file (give a mask image or rectangles "
                         f"x,y,w,h[;x,y,w,h...])")
    from .io import read_image
    a = read_image(path)
    if a.ndim == 3:
        if not all(np.array_equal(a[..., 0], a[..., c]) for c in range(1, min(3, a.shape[-1]))):
            raise InputError(f"{path}: a colour mask image: give a grey or binary mask")
        a = a[..., 0]
    return a


def mask_from_array(mask, height, width, what="the ROI mask"):
    """Check a user's mask array (the rules of the module doc) and return it as bool."""
    a = np.asarray(mask)
    if a.dtype == np.bool_:
        m = a
    else:
        if a.dtype.kind not in "iuf":
            raise InputError(f"{what}: {a.dtype} values cannot form a mask")
        values = np.unique(a)
        if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
            shown = ", ".join(str(v) for v in values[:6].tolist())
            raise InputError(f"{what} is not binary (values {shown}"
                             f"{', ...' if len(values) > 6 else ''}): use 0 for the background "
                             f"and 1 or 255 for the ROI")
        m = a != 0
    if m.shape != (height, width):
        raise InputError(f"{what} has shape {'x'.join(map(str, m.shape))}, the image is "
                         f"{height}x{width} (height x width)")
    return m


def rectangles_mask(rects, height, width):
    """The union of (x, y, w, h) rectangles, each inside a height x width image."""
    m = np.zeros((height, width), dtype=bool)
    if not len(rects):
        raise InputError("no rectangle given")
    for r in rects:
        try:
            x, y, w, h = (int(v) for v in r)
            if any(int(v) != v for v in r):
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(f"a rectangle is four integers x,y,w,h, got {r!r}") from None
        if w < 1 or h < 1:
            raise InputError(f"rectangle {x},{y},{w},{h} is empty")
        if x < 0 or y < 0 or x + w > width or y + h > height:
            raise InputError(f"rectangle {x},{y},{w},{h} lies outside the {width}x{height} "
                             f"image (width x height)")
        m[y:y + h, x:x + w] = True
    return m


# ----------------------------------------------------------------------------- MASK payload

def _runs(mask):
    """Run lengths of the row-XORed mask, starting with a (possibly empty) run of zeros."""
    x = mask.astype(np.uint8)
    x[1:] ^= mask[:-1].astype(np.uint8)
    f = x.ravel()
    edges = np.flatnonzero(f[1:] != f[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [f.size])))
    if f[0]:
        runs = np.concatenate(([0], runs))
    return runs.astype(np.uint64)


def _leb128(values):
    v = np.asarray(values, dtype=np.uint64)
    nbytes = np.ones(v.size, dtype=np.int64)
    for i in range(1, 10):
        nbytes += v >= np.uint64(1) << np.uint64(7 * i)
    starts = np.cumsum(nbytes) - nbytes
    out = np.empty(int(nbytes.sum()), dtype=np.uint8)
    for i in range(int(nbytes.max(initial=1))):
        sel = nbytes > i
        byte = (v[sel] >> np.uint64(7 * i)) & np.uint64(127)
        out[starts[sel] + i] = byte.astype(np.uint8) | (np.where(nbytes[sel] > i + 1, 128, 0)
                                                         .astype(np.uint8))
    return out.tobytes()


def _unleb128(data, limit):
    """The values of a canonical LEB128 byte string, each at most `limit` (CorruptDataError
    otherwise)."""
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size == 0 or b[-1] & 128:
        raise CorruptDataError("MASK chunk: run lengths end inside a number")
    ends = np.flatnonzero(b < 128)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 6:
        raise CorruptDataError("MASK chunk: a run length is too long")
    if np.any((lengths > 1) & (b[ends] == 0)):
        raise CorruptDataError("MASK chunk: a run length is not minimally coded")
    group = np.repeat(np.arange(ends.size), lengths)
    pos = np.arange(b.size) - starts[group]
    parts = (b & 127).astype(np.uint64) << (7 * pos).astype(np.uint64)
    values = np.add.reduceat(parts, starts) if b.size else parts
    if np.any(values > np.uint64(limit)):
        raise CorruptDataError("MASK chunk: a run is longer than the image")
    return values


def pack_mask(mask, method=None):
    """The MASK payload of an (H, W) mask in `method`, or (None) in method 1 where that is
    shorter than method 0."""
    import brotli
    from . import core
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    runs = coded = None
    if method in (None, METHOD_RUNS_BROTLI):
        runs = brotli.compress(_leb128(_runs(m)), quality=11)
    if method in (None, METHOD_CONTEXT):
        coded = core.encode_mask(m)
    if coded is not None and (runs is None or len(coded) < len(runs)):
        return _HEAD.pack(w, h, METHOD_CONTEXT) + coded
    if runs is None:
        raise InputError(f"MASK method must be {METHOD_RUNS_BROTLI} or {METHOD_CONTEXT}, "
                         f"got {method!r}")
    return _HEAD.pack(w, h, METHOD_RUNS_BROTLI) + runs


def mask_method(payload):
    """The method byte of a MASK payload (None when it is too short to hold one)."""
    return payload[8] if len(payload) >= _HEAD.size else None


def unpack_mask(payload, height, width, version=CONTEXT_VERSION):
    """The (H, W) boolean mask of a MASK payload of a file of format `version`, checked
    against the image size: any damage is a CorruptDataError, an unknown method (method 1
    below 1.8) an UnsupportedError."""
    if len(payload) < _HEAD.size:
        raise CorruptDataError("MASK chunk is too short")
    w, h, method = _HEAD.unpack_from(payload)
    if (w, h) != (width, height):
        raise CorruptDataError(f"MASK chunk is {w}x{h}, the image {width}x{height}")
    if method == METHOD_CONTEXT and tuple(version) >= CONTEXT_VERSION:
        from . import core
        try:
            return core.decode_mask(bytes(payload[_HEAD.size:]), height, width)
        except CorruptDataError as exc:
            raise CorruptDataError(f"MASK chunk: {exc}") from None
    if method != METHOD_RUNS_BROTLI:
        v = ".".join(str(int(p)) for p in version)
        raise UnsupportedError(f"MASK chunk method {method} is not supported"
                               + (f" in a version {v} file" if method == METHOD_CONTEXT else ""))
    return _unpack_runs(payload, height, width)


def _unpack_runs(payload, height, width):
    import brotli
    n = width * height
    limit = (n + 1) * 6          # the longest run list a valid mask can have
    try:
        d = brotli.Decompressor()
        try:   # brotli >= 1.2 bounds the output (by blocks), older versions cannot
            runs = d.process(bytes(payload[_HEAD.size:]), output_buffer_limit=limit + 1)
        except TypeError:
            runs = d.process(bytes(payload[_HEAD.size:]))
        if len(runs) > limit or not d.is_finished():
            raise CorruptDataError("MASK chunk: run lengths are damaged or too long")
    except brotli.error as exc:
        raise CorruptDataError(f"MASK chunk cannot be decompressed: {exc}") from None
    values = _unleb128(runs, n)
    if values.size > n + 1:
        raise CorruptDataError("MASK chunk: more runs than pixels")
    if values.size > 1 and np.any(values[1:] == 0):
        raise CorruptDataError("MASK chunk: an empty run after the first")
    if int(values.sum()) != n:
        raise CorruptDataError(f"MASK chunk: runs cover {int(values.sum())} pixels, "
                               f"the image has {n}")
    x = np.repeat((np.arange(values.size) & 1).astype(np.uint8), values.astype(np.int64))
    return np.bitwise_xor.accumulate(x.reshape(height, width), axis=0).astype(bool)
