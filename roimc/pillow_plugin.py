"""A Pillow plugin for .rmc files: after `import roimc.pillow_plugin` (done by `import roimc`)

    from PIL import Image
    im = Image.open("scan.rmc")         # mode L, I;16, LA, RGB or RGBA
    im.save("copy.rmc")                 # lossless; options: effort=, coder=, tile_size=, threads=
    im.save("stack.rmc", save_all=True, append_images=[...])   # several frames

Mapping between .rmc sample layouts and PIL modes:

    uint8  gray            L        uint8  2 channels    LA
    uint16 gray            I;16     uint8  3 channels    RGB
                                    uint8  4 channels    RGBA

Other files (int8/int16 samples, 16-bit colour, 16-bit gray+alpha) have no PIL mode: opening
them raises roimc.UnsupportedError; read them with roimc.read() / roimc.decode() instead.
A file with a frames axis is a multi-frame image (n_frames, seek, tell).

Opening reads only the header; the pixels are decoded (all frames at once, with
roimc.decode) on the first load(). Saving accepts modes L, LA, RGB, RGBA, I;16 (also I;16L,
I;16B) and I when its values lie in 0..65535 (stored as uint16).
"""
import struct
import zlib

import numpy as np
from PIL import Image, ImageFile, ImageSequence

from .container import (COMPACT_SIGNATURE, DIM_FRAMES, HEAD, SIGNATURE, Header, expand_head,
                        read_leb)
from .errors import CorruptDataError, UnsupportedError

FORMAT = "RMC"
DESCRIPTION = "roimc medical image"
EXTENSION = ".rmc"
MIME = "image/x-rmc"

# (sample type, channels) -> (PIL mode, raw mode of the decoded samples' bytes)
_MODES = {
    ("uint8", 1): ("L", "L"),
    ("uint8", 2): ("LA", "LA"),
    ("uint8", 3): ("RGB", "RGB"),
    ("uint8", 4): ("RGBA", "RGBA"),
    ("uint16", 1): ("I;16", "I;16"),   # little-endian bytes (made so before frombytes)
}
_SAVE_MODES = ("L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I")
_ENCODE_OPTIONS = ("effort", "coder", "tile_size", "threads", "bits", "metadata", "framing")


def _accept(prefix):
    return (prefix[:len(SIGNATURE)] == SIGNATURE
            or prefix[:len(COMPACT_SIGNATURE)] == COMPACT_SIGNATURE)


def _read_compact_header(fp, name):
    """The HEAD of a compact file (Section 2.6), fp just past its signature. The file's CRC
    is checked when it is decoded."""
    start = fp.read(6)   # the type code and a length of up to 5 bytes
    if start[:1] != b"\x01":
        raise CorruptDataError(f"{name}first chunk is not HEAD")
    try:
        got = read_leb(start, 1, len(start), 1 << 16)
    except ValueError:
        raise CorruptDataError(f"{name}HEAD chunk has a malformed or too large length") \
            from None
    if got is None:
        raise CorruptDataError(f"{name}file is truncated in its HEAD chunk")
    length, pos = got
    payload = (start[pos:] + fp.read(max(0, length - (len(start) - pos))))[:length]
    if len(payload) < length:
        raise CorruptDataError(f"{name}file is truncated in its HEAD chunk")
    return Header.unpack(expand_head(payload))


def _read_header(fp, name):
    """Read the signature and the HEAD chunk from fp (positioned at the file's start)."""
    sig = fp.read(len(COMPACT_SIGNATURE))
    if sig == COMPACT_SIGNATURE:
        return _read_compact_header(fp, name)
    sig += fp.read(len(SIGNATURE) - len(sig))
    if sig != SIGNATURE:
        raise SyntaxError("not an .rmc file")
    start = fp.read(8)
    if len(start) < 8:
        raise CorruptDataError(f"{name}file is truncated in its first chunk")
    length, ctype = struct.unpack(">I", start[:4])[0], start[4:]
    if ctype != HEAD:
        raise CorruptDataError(f"{name}first chunk is not HEAD")
    if length > 1 << 16:
        raise CorruptDataError(f"{name}HEAD chunk declares {length} bytes")
    rest = fp.read(length + 4)
    if len(rest) < length + 4:
        raise CorruptDataError(f"{name}file is truncated in its HEAD chunk")
    payload, crc = rest[:length], struct.unpack(">I", rest[length:])[0]
    if zlib.crc32(payload, zlib.crc32(HEAD)) != crc:
        raise CorruptDataError(f"{name}CRC mismatch in chunk HEAD at byte 8")
    return Header.unpack(payload)


class RmcImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = DESCRIPTION
    _close_exclusive_fp_after_loading = False

    def _open(self):
        name = f"{self.filename}: " if self.filename else ""
        self._rmc_start = self.fp.tell()
        header = _read_header(self.fp, name)
        key = (header.sample_type, header.channels)
        if key not in _MODES:
            what = f"{header.sample_type} samples with {header.channels} channel" \
                   + ("s" if header.channels > 1 else "")
            raise UnsupportedError(f"{name}{what} have no PIL image mode (PIL opens uint8 "
                                   f"gray/LA/RGB/RGBA and uint16 gray); read the file with "
                                   f"roimc.read() or roimc.decode()")
        mode, self._rmc_rawmode = _MODES[key]
        if isinstance(getattr(type(self), "mode", None), property):
            self._mode = mode        # Pillow >= 10.1
        else:
            self.mode = mode
        self._size = (header.width, header.height)
        self._rmc_header = header
        self._rmc_frames_axis = bool(header.dims & DIM_FRAMES)
        self._n_frames = header.frames
        self.is_animated = header.frames > 1
        self._rmc_frame = 0          # the current frame (seek / tell)
        self._rmc_loaded = None      # the frame held in self.im
        self._rmc_array = None       # all decoded samples, kept for seeking
        self.info["bits"] = header.bits
        self.tile = []

    @property
    def n_frames(self):
        return self._n_frames

    def seek(self, frame):
        if not self._seek_check(frame):
            return
        self._rmc_frame = frame

    def tell(self):
        return self._rmc_frame

    def verify(self):
        """Check the structure and every chunk CRC of the file without decoding it."""
        from .container import parse
        if self.fp is None:
            raise ValueError("cannot verify: the image file is closed")
        self.fp.seek(self._rmc_start)
        parse(self.fp.read())
        if self._exclusive_fp:
            self.fp.close()
        self.fp = None

    def _decoded(self):
        if self._rmc_array is None:
            from .api import decode
            if self.fp is None:
                raise ValueError("cannot load: the image file is closed")
            self.fp.seek(self._rmc_start)
            data = self.fp.read()
            if self._exclusive_fp:
                self.fp.close()
                self.fp = None
            array = decode(data)
            if not self._rmc_frames_axis:
                array = array[None]
            if array.dtype.itemsize > 1:
                array = array.astype(array.dtype.newbyteorder("<"), copy=False)
            self._rmc_array = array
        return self._rmc_array

    def load(self):
        # Pillow >= 11 keeps the image memory in _im, older versions in im
        held = self.__dict__.get("_im", self.__dict__.get("im"))
        if self._rmc_loaded != self._rmc_frame or held is None:
            frame = np.ascontiguousarray(self._decoded()[self._rmc_frame])
            loaded = Image.frombytes(self.mode, self.size, frame.tobytes(), "raw",
                                     self._rmc_rawmode)
            self.im = loaded.im
            self._rmc_loaded = self._rmc_frame
            self.readonly = 0
            if self._n_frames == 1:
                self._rmc_array = None   # self.im holds the pixels now
        self.tile = []
        return Image.Image.load(self)


def _array_of(im):
    """The samples of a PIL image as an array roimc.encode takes (lossless)."""
    mode = im.mode
    if mode not in _SAVE_MODES:
        hint = {"1": 'im.convert("L")', "P": 'im.convert("RGB")', "PA": 'im.convert("RGBA")',
                "F": "an integer mode"}.get(mode, "L, LA, RGB, RGBA or I;16")
        raise UnsupportedError(f"cannot write mode {mode} as RMC (use {hint})")
    a = np.asarray(im)
    if mode.startswith("I"):
        if a.size and (int(a.min()) < 0 or int(a.max()) > 65535):
            raise UnsupportedError(f"cannot write mode {mode} as RMC: values "
                                   f"{int(a.min())}..{int(a.max())} are outside 0..65535")
        a = a.astype(np.uint16)
    return a


def _options(im):
    return {k: im.encoderinfo[k] for k in _ENCODE_OPTIONS if k in im.encoderinfo}


def _save(im, fp, filename):
    from .api import encode
    a = _array_of(im)
    fp.write(encode(a, channels_last=True if a.ndim == 3 else None, **_options(im)))


def _save_all(im, fp, filename):
    from .api import encode
    current = im.tell()
    frames = []
    try:
        for source in [im] + list(im.encoderinfo.get("append_images", [])):
            for frame in ImageSequence.Iterator(source):
                frames.append(_array_of(frame))
    finally:
        im.seek(current)
    if len(frames) == 1:
        return _save(im, fp, filename)
    first = frames[0]
    for k, f in enumerate(frames[1:], 2):
        if f.shape != first.shape or f.dtype != first.dtype:
            raise UnsupportedError(f"cannot write frames of different size or mode as one RMC "
                                   f"file (frame {k}: {f.shape} {f.dtype}, frame 1: "
                                   f"{first.shape} {first.dtype})")
    stack = np.stack(frames)
    fp.write(encode(stack, channels_last=False if stack.ndim == 3 else None, **_options(im)))


def register():
    """Register the plugin with Pillow (idempotent; done on import)."""
    Image.register_open(FORMAT, RmcImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_save_all(FORMAT, _save_all)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)


register()

__all__ = ["RmcImageFile", "register", "FORMAT"]
