"""From a user's array to coded samples and back: layout, sample type, stored bits."""
import numpy as np

from .container import DIM_CHANNELS, DIM_FRAMES, Header
from .errors import InputError, UnsupportedError

SUPPORTED = ("2-D gray (H, W), colour (H, W, C) with C = 2..4, frames (F, H, W) or "
             "(F, H, W, C); uint8, uint16, int8 or int16 samples")


def describe(array, channels_last=None, bits=None):
    """Check `array` and return (samples, header fields), samples being a
    (frames, height, width, channels) view of unsigned coded values.

    A 3-D array whose last axis has 2 to 4 entries is read as (H, W, C) unless
    channels_last is False; any other 3-D array as (F, H, W)."""
    a = np.asarray(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.kind in "iu" and not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype not in (np.uint8, np.uint16, np.int8, np.int16):
        raise UnsupportedError(f"{a.dtype} samples are not supported: {SUPPORTED}")
    if a.size == 0:
        raise InputError(f"empty image {a.shape}: {SUPPORTED}")
    if a.ndim == 2:
        dims, v = 0, a[None, :, :, None]
    elif a.ndim == 3:
        colour = channels_last if channels_last is not None else 2 <= a.shape[-1] <= 4
        if colour:
            dims, v = DIM_CHANNELS, a[None]
        else:
            dims, v = DIM_FRAMES, a[..., None]
    elif a.ndim == 4:
        dims, v = DIM_FRAMES | DIM_CHANNELS, a
    else:
        raise UnsupportedError(f"{a.ndim}-D arrays are not supported: {SUPPORTED}")
    frames, height, width, channels = v.shape
    if channels > 4:
        raise UnsupportedError(f"{channels} channels are not supported (at most 4): {SUPPORTED}")
    if max(width, height) >= 1 << 32 or frames >= 1 << 32:
        raise UnsupportedError("image dimensions must be below 2**32")

    container_bits = 8 * a.dtype.itemsize
    signed = a.dtype.kind == "i"
    lo, hi = (int(v.min()), int(v.max()))
    if signed:
        need = max(1, (max(hi, -lo - 1)).bit_length() + 1)
        if bits is None:
            bits = need
        elif bits < need:
            raise InputError(f"samples span [{lo}, {hi}]: {bits} signed bits cannot hold them")
        offset = -(1 << (bits - 1))
        coded = (v.astype(np.int32) - offset)
    else:
        need = max(1, hi.bit_length())
        if bits is None:
            bits = need
        elif bits < need:
            raise InputError(f"sample value {hi} does not fit in {bits} bits")
        offset = 0
        coded = v
    if not 1 <= bits <= container_bits:
        raise InputError(f"bits must be 1 to {container_bits} for {a.dtype} samples")
    fields = dict(width=width, height=height, frames=frames, channels=channels, bits=bits,
                  sample_type=a.dtype.name, offset=offset, dims=dims)
    return coded, fields


def allocate(header: Header):
    """The decoder's output array, and its (F, H, W, C) view."""
    out = np.empty(header.shape(), dtype=np.dtype(header.sample_type))
    view = out.reshape(header.frames, header.height, header.width, header.channels)
    return out, view
