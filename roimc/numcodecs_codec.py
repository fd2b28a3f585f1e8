"""A numcodecs codec (codec id "roimc") compressing array chunks losslessly as .rmc data.

    import roimc.numcodecs_codec                 # registers "roimc" with numcodecs
    from roimc.numcodecs_codec import Roimc
    codec = Roimc()                              # or Roimc(coder="huffman", tile_size=256)
    data = codec.encode(chunk)                   # chunk: an ndarray
    back = codec.decode(data)                    # same shape, dtype and memory order

Chunks the codec takes:

* dtypes uint8, uint16, int8, int16, and bool (stored as uint8 0/1); either byte order.
* 2-D chunks are coded as (H, W) images, 3-D as (H, W, C) when the last axis has 2 to 4
  entries and as (F, H, W) otherwise, 4-D as (F, H, W, C) when the last axis has at most 4
  entries and as (A*B, H, W) frames otherwise.
* 0-D and 1-D chunks are coded as one row (1, N).
* Chunks of 5 or more dimensions are refused (roimc.UnsupportedError), as are other dtypes.
* Fortran-ordered chunks are coded transposed, so that decode returns the same bytes in the
  same memory order (what zarr expects of a compressor).

Where the coded array differs from the chunk (shape, dtype, order), the chunk's own shape,
dtype and order are stored in an ancillary "cshp" chunk of the .rmc data (JSON); decode
restores them. A chunk that is passed as bytes (not an ndarray) is coded as a row of uint8.

The encoded data is a complete .rmc file: roimc.decode() reads it too.

Zarr: a zarr_format=2 array takes the codec as its compressor
(zarr.create_array(..., zarr_format=2, compressors=Roimc())). zarr 3's own format (v3) does not
take numcodecs codecs as compressors; use the array-to-bytes codec ZarrRoimc (codec name
"roimc") as the serializer: zarr.create_array(..., serializer=ZarrRoimc(), compressors=None).
ZarrRoimc is built on first access (importing this module does not import zarr) and is then
registered with zarr, so arrays written with it can be read back in the same process;
another process needs the "zarr.codecs" entry point or an access to ZarrRoimc first.

When numcodecs is installed, Roimc subclasses numcodecs.abc.Codec and is registered, so
numcodecs.get_codec({"id": "roimc"}) works once this module is imported (or, when roimc is
installed with its entry point, without importing it). Without numcodecs the class still
works, with the same methods.
"""
import json

import numpy as np

from . import core
from .api import ancillary_chunks, decode as _decode, encode as _encode
from .errors import CorruptDataError, InputError, UnsupportedError

try:
    from numcodecs.abc import Codec as _Base
    from numcodecs.registry import register_codec as _register_codec
except ImportError:  # numcodecs is optional
    _Base = object
    _register_codec = None

CODEC_ID = "roimc"
SHAPE_CHUNK = b"cshp"
_DTYPES = (np.uint8, np.uint16, np.int8, np.int16)


def _as_ndarray(buf):
    if isinstance(buf, np.ndarray):
        return buf
    if hasattr(buf, "__array_interface__") or hasattr(buf, "__array__"):
        return np.asarray(buf)
    return np.asarray(memoryview(buf))


def _as_bytes(buf):
    """The encoded bytes of buf (bytes, bytearray, memoryview or an ndarray)."""
    if isinstance(buf, (bytes, bytearray)):
        return buf
    if isinstance(buf, np.ndarray):
        return np.ascontiguousarray(buf).view(np.uint8).reshape(-1).data
    return memoryview(buf).cast("B")


def _copy_into(array, out):
    """Copy the decoded chunk into out, as numcodecs does: byte for byte, viewed with out's
    dtype and shape."""
    dst = out if isinstance(out, np.ndarray) else np.asarray(memoryview(out))
    if dst.nbytes != array.nbytes:
        raise InputError(f"out holds {dst.nbytes} bytes, the decoded chunk {array.nbytes}")
    order = "F" if dst.flags.f_contiguous and not dst.flags.c_contiguous else "C"
    src = array.reshape(-1, order="A")
    if dst.dtype != src.dtype:
        src = src.view(dst.dtype)
    np.copyto(dst, src.reshape(dst.shape, order=order))
    return dst


class Roimc(_Base):
    """Lossless roimc compression of ndarray chunks (numcodecs codec id "roimc").

    coder: "golomb" (default), "huffman" or "raw"; tile_size: tile edge in pixels (int or
    [height, width]); threads: worker threads per chunk (None = all cores)."""

    codec_id = CODEC_ID

    def __init__(self, coder="golomb", tile_size=512, threads=None):
        if coder not in core.CODERS:
            raise InputError(f"unknown coder {coder!r}: choose from {', '.join(core.CODERS)}")
        if isinstance(tile_size, (list, tuple)):
            if len(tile_size) != 2:
                raise InputError(f"tile_size must be an int or [height, width], got {tile_size!r}")
            tile_size = [int(t) for t in tile_size]
            ok = all(t >= 1 for t in tile_size)
        else:
            tile_size = int(tile_size)
            ok = tile_size >= 1
        if not ok:
            raise InputError(f"tile size must be a positive integer, got {tile_size!r}")
        if threads is not None and int(threads) < 1:
            raise InputError(f"threads must be a positive integer or None, got {threads!r}")
        self.coder = coder
        self.tile_size = tile_size
        self.threads = None if threads is None else int(threads)

    # numcodecs.abc.Codec interface -----------------------------------------------------

    def encode(self, buf):
        """Compress an ndarray chunk (or bytes-like data, coded as uint8) to .rmc bytes."""
        a = _as_ndarray(buf)
        shape, dtype = a.shape, a.dtype
        fortran = a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous
        if fortran:
            a = a.T
        if a.dtype == np.bool_:
            a = a.view(np.uint8)
        elif a.dtype.kind in "iu" and a.dtype.itemsize <= 2 and not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        if a.dtype not in _DTYPES:
            raise UnsupportedError(f"the roimc codec takes uint8, uint16, int8, int16 or bool "
                                   f"chunks, not {dtype}")
        channels_last = None
        if a.ndim < 2:
            a = a.reshape(1, -1)
        elif a.ndim == 4 and a.shape[-1] > 4:
            a = a.reshape(a.shape[0] * a.shape[1], a.shape[2], a.shape[3])
            channels_last = False
        elif a.ndim > 4:
            raise UnsupportedError(f"the roimc codec takes chunks of at most 4 dimensions, "
                                   f"not {a.ndim} (shape {shape})")
        ancillary = None
        if a.shape != shape or a.dtype != dtype or fortran:
            record = {"shape": list(shape), "dtype": dtype.str, "order": "F" if fortran else "C"}
            ancillary = {SHAPE_CHUNK: json.dumps(record).encode()}
        return _encode(a, coder=self.coder, tile_size=self.tile_size, threads=self.threads,
                       channels_last=channels_last, ancillary=ancillary)

    def decode(self, buf, out=None):
        """Decompress .rmc bytes into an ndarray of the chunk's shape and dtype; when out is
        given, copy the result into it (numcodecs semantics) and return it."""
        data = _as_bytes(buf)
        array = _decode(data, threads=self.threads)
        extra = ancillary_chunks(data).get(SHAPE_CHUNK)
        if extra is not None:
            array = _restore(array, extra)
        if out is not None:
            return _copy_into(array, out)
        return array

    def get_config(self):
        tile = list(self.tile_size) if isinstance(self.tile_size, (list, tuple)) \
            else self.tile_size
        return {"id": self.codec_id, "coder": self.coder, "tile_size": tile,
                "threads": self.threads}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("id", None)
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Roimc) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(json.dumps(self.get_config(), sort_keys=True))

    def __repr__(self):
        return (f"Roimc(coder={self.coder!r}, tile_size={self.tile_size!r}, "
                f"threads={self.threads!r})")


def _restore(array, payload):
    """Give the decoded array the shape, dtype and memory order recorded at encoding."""
    try:
        record = json.loads(payload)
        shape = tuple(int(n) for n in record["shape"])
        dtype = np.dtype(record["dtype"])
        order = record.get("order", "C")
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptDataError(f"cshp chunk cannot be read: {exc}") from None
    if int(np.prod(shape, dtype=np.int64)) != array.size or order not in ("C", "F") \
            or dtype.kind not in "biu" or dtype.itemsize != array.dtype.itemsize:
        raise CorruptDataError(f"cshp chunk does not fit the decoded samples "
                               f"({record} for {array.shape} {array.dtype})")
    if order == "F":
        array = array.reshape(shape[::-1]).T
    else:
        array = array.reshape(shape)
    if array.dtype != dtype:
        array = array.astype(dtype)
    return array


if _register_codec is not None:
    _register_codec(Roimc)

_ZARR_CODEC = None


def _zarr_codec_class():
    """Build (once) and register the zarr v3 array-to-bytes codec ZarrRoimc."""
    global _ZARR_CODEC
    if _ZARR_CODEC is not None:
        return _ZARR_CODEC
    import asyncio
    from dataclasses import dataclass

    from zarr.abc.codec import ArrayBytesCodec
    from zarr.core.common import parse_named_configuration
    from zarr.registry import register_codec

    @dataclass(frozen=True)
    class ZarrRoimc(ArrayBytesCodec):
        """zarr v3 array-to-bytes codec "roimc": each chunk becomes .rmc data (lossless).
        Use it as the serializer of a zarr_format=3 array."""

        is_fixed_size = False
        coder: str = "golomb"
        tile_size: object = 512
        threads: object = None

        def __init__(self, *, coder="golomb", tile_size=512, threads=None):
            checked = Roimc(coder=coder, tile_size=tile_size, threads=threads)
            tile = tuple(checked.tile_size) if isinstance(checked.tile_size, list) \
                else checked.tile_size
            object.__setattr__(self, "coder", checked.coder)
            object.__setattr__(self, "tile_size", tile)
            object.__setattr__(self, "threads", checked.threads)

        @classmethod
        def from_dict(cls, data):
            _, config = parse_named_configuration(data, CODEC_ID, require_configuration=False)
            return cls(**(config or {}))

        def to_dict(self):
            tile = list(self.tile_size) if isinstance(self.tile_size, tuple) else self.tile_size
            return {"name": CODEC_ID, "configuration": {"coder": self.coder, "tile_size": tile,
                                                        "threads": self.threads}}

        def _numcodec(self):
            return Roimc(coder=self.coder, tile_size=self.tile_size, threads=self.threads)

        def validate(self, *, shape, dtype, chunk_grid):
            native = dtype.to_native_dtype()
            if native.newbyteorder("=") not in _DTYPES and native != np.bool_:
                raise ValueError(f"the roimc codec takes uint8, uint16, int8, int16 or bool "
                                 f"arrays, not {native}")
            if len(shape) > 4:
                raise ValueError(f"the roimc codec takes arrays of at most 4 dimensions, "
                                 f"not {len(shape)}")

        async def _decode_single(self, chunk_bytes, chunk_spec):
            array = await asyncio.to_thread(self._numcodec().decode, chunk_bytes.to_bytes())
            return chunk_spec.prototype.nd_buffer.from_ndarray_like(
                array.reshape(chunk_spec.shape))

        async def _encode_single(self, chunk_array, chunk_spec):
            data = await asyncio.to_thread(self._numcodec().encode,
                                           chunk_array.as_ndarray_like())
            return chunk_spec.prototype.buffer.from_bytes(data)

        def compute_encoded_size(self, input_byte_length, chunk_spec):
            raise NotImplementedError

    ZarrRoimc.__module__ = __name__
    ZarrRoimc.__qualname__ = "ZarrRoimc"
    register_codec(CODEC_ID, ZarrRoimc)
    _ZARR_CODEC = ZarrRoimc
    return ZarrRoimc


def __getattr__(name):
    if name == "ZarrRoimc":
        return _zarr_codec_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Roimc", "CODEC_ID", "ZarrRoimc"]
