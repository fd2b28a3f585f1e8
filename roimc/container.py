"""The .rmc container: signature, CRC-framed chunks, the header (spec/rmc-v1.md)."""
import struct
import zlib
from dataclasses import dataclass, field

from .errors import CorruptDataError, FormatError, LimitError, UnsupportedError

SIGNATURE = b"\x89RMC\r\n\x1a\n"
VERSION = (1, 12)   # the newest version this module reads and writes

# critical chunks (first letter upper case)
HEAD = b"HEAD"   # header, first chunk
TILE = b"TILE"   # one coded tile of one frame
MASK = b"MASK"   # ROI mask (near-lossless)
NEAR = b"NEAR"   # error bounds of a near-lossless file
GRAD = b"GRAD"   # the grade of a near-lossless file's background bound
FILT = b"FILT"   # the post-filter of a near-lossless file's background
LATN = b"LATN"   # quantized latent of one frame (lossy, hybrid)
DCID = b"DCID"   # decoder-id of the neural decoder (lossy, hybrid)
PRED = b"PRED"   # predictor weights (reserved)
PLTE = b"PLTE"   # palette table of transform 2
IEND = b"IEND"   # end of file, empty
# ancillary chunks (first letter lower case)
DSUM = b"dsum"   # CRC-32 of the decoded samples
META = b"meta"   # brotli-compressed JSON metadata

KNOWN_CRITICAL = {HEAD, TILE, PLTE, IEND, NEAR, GRAD, FILT, MASK, LATN, DCID}
MAX_CHUNK = 1 << 31

MODES = ("lossless", "near-lossless", "lossy", "hybrid")
SAMPLE_TYPES = ("uint8", "uint16", "int8", "int16")
TRANSFORMS = ("none", "rct", "palette")
DIM_FRAMES = 1     # the array had a frames axis
DIM_CHANNELS = 2   # the array had a channels axis

_HEAD = struct.Struct(">BBBBIIIBBBBIIi")

DEFAULT_MAX_SAMPLES = 1 << 31


def is_critical(ctype):
    return 65 <= ctype[0] <= 90


@dataclass
class Header:
    width: int
    height: int
    frames: int = 1
    channels: int = 1
    bits: int = 8
    sample_type: str = "uint8"
    offset: int = 0
    mode: str = "lossless"
    transform: str = "none"
    tile_width: int = 1024
    tile_height: int = 1024
    dims: int = 0
    version: tuple = (1, 0)   # the writer raises it for the features of later versions

    @property
    def samples(self):
        return self.width * self.height * self.frames * self.channels

    def tiles_across(self):
        return -(-self.width // self.tile_width)

    def tiles_down(self):
        return -(-self.height // self.tile_height)

    def tile_count(self):
        return self.tiles_across() * self.tiles_down()

    def shape(self):
        shape = (self.height, self.width)
        if self.dims & DIM_FRAMES:
            shape = (self.frames,) + shape
        if self.dims & DIM_CHANNELS:
            shape = shape + (self.channels,)
        return shape

    def pack(self):
        return _HEAD.pack(self.version[0], self.version[1], MODES.index(self.mode),
                          SAMPLE_TYPES.index(self.sample_type), self.width, self.height,
                          self.frames, self.channels, self.bits, TRANSFORMS.index(self.transform),
                          self.dims, self.tile_width, self.tile_height, self.offset)

    @classmethod
    def unpack(cls, payload):
        if len(payload) < 2:
            raise CorruptDataError("HEAD chunk is too short")
        major, minor = payload[0], payload[1]
        if major != VERSION[0]:
            raise UnsupportedError(f"format version {major}.{minor} is not supported "
                                   f"(this roimc reads version {VERSION[0]}.x)")
        if len(payload) < _HEAD.size or (minor == 0 and len(payload) != _HEAD.size):
            raise CorruptDataError(f"HEAD chunk has {len(payload)} bytes, expected {_HEAD.size}")
        (_, _, mode, stype, width, height, frames, channels, bits, transform, dims, tw, th,
         offset) = _HEAD.unpack_from(payload)
        # a later minor version may append fields: they are ignored here
        if mode >= len(MODES):
            raise UnsupportedError(f"mode {mode} is not supported")
        if stype >= len(SAMPLE_TYPES):
            raise UnsupportedError(f"sample type {stype} is not supported")
        if transform >= len(TRANSFORMS):
            raise UnsupportedError(f"colour transform {transform} is not supported")
        h = cls(width=width, height=height, frames=frames, channels=channels, bits=bits,
                sample_type=SAMPLE_TYPES[stype], offset=offset, mode=MODES[mode],
                transform=TRANSFORMS[transform], tile_width=tw, tile_height=th, dims=dims,
                version=(major, minor))
        h.validate()
        return h

    def validate(self):
        bad = CorruptDataError
        if not (self.width >= 1 and self.height >= 1 and self.frames >= 1):
            raise bad("header declares an empty image")
        if not 1 <= self.channels <= 4:
            raise bad(f"header declares {self.channels} channels (1 to 4 allowed)")
        limit = 8 if self.sample_type.endswith("8") else 16
        if not 1 <= self.bits <= limit:
            raise bad(f"header declares {self.bits} bits for {self.sample_type} samples")
        if self.tile_width < 1 or self.tile_height < 1:
            raise bad("header declares an empty tile")
        if self.dims & ~(DIM_FRAMES | DIM_CHANNELS):
            raise bad("header has unknown dimension flags")
        if self.frames > 1 and not self.dims & DIM_FRAMES:
            raise bad("header declares several frames without a frames axis")
        if self.channels > 1 and not self.dims & DIM_CHANNELS:
            raise bad("header declares several channels without a channels axis")
        if self.transform == "rct" and self.channels < 3:
            raise bad("colour transform needs at least 3 channels")
        signed = self.sample_type.startswith("int")
        lo = -(1 << (limit - 1)) if signed else 0
        hi = (1 << (limit - 1)) - 1 if signed else (1 << limit) - 1
        if not (lo <= self.offset and self.offset + (1 << self.bits) - 1 <= hi):
            raise bad("header declares a sample offset outside the sample type")


@dataclass
class Chunk:
    ctype: bytes
    payload: bytes
    offset: int = field(default=0, compare=False)


def pack_chunk(ctype, payload):
    if len(payload) >= MAX_CHUNK:
        raise FormatError("chunk payload exceeds 2 GiB")
    crc = zlib.crc32(payload, zlib.crc32(ctype))
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)


def pack(chunks):
    """Signature followed by the chunks; the caller supplies HEAD first and IEND last."""
    return SIGNATURE + b"".join(pack_chunk(t, p) for t, p in chunks)


def parse(data):
    """Split a file into checked chunks. Unknown ancillary chunks are kept in the list (the
    decoder ignores them); an unknown critical chunk, a CRC mismatch, truncation or bytes
    after IEND raise."""
    data = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
    if len(data) < len(SIGNATURE) or bytes(data[:len(SIGNATURE)]) != SIGNATURE:
        if bytes(data[:4]) == SIGNATURE[:4]:
            raise CorruptDataError("file signature is damaged")
        raise FormatError("not an .rmc file (signature missing)")
    pos = len(SIGNATURE)
    chunks = []
    end = len(data)
    while True:
        if end - pos < 12:
            raise CorruptDataError(f"file is truncated at byte {pos} (no IEND chunk)")
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = bytes(data[pos + 4:pos + 8])
        if not all(65 <= c <= 90 or 97 <= c <= 122 for c in ctype):
            raise CorruptDataError(f"invalid chunk type at byte {pos}")
        if length >= MAX_CHUNK:
            raise CorruptDataError(f"chunk at byte {pos} declares {length} bytes (limit 2^31 - 1)")
        if length > end - pos - 12:
            raise CorruptDataError(f"chunk {ctype.decode()} at byte {pos} declares {length} bytes, "
                                   f"{end - pos - 12} remain: file truncated or damaged")
        payload = bytes(data[pos + 8:pos + 8 + length])
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(payload, zlib.crc32(ctype)) != crc:
            raise CorruptDataError(f"CRC mismatch in chunk {ctype.decode()} at byte {pos}")
        if is_critical(ctype) and ctype not in KNOWN_CRITICAL:
            raise UnsupportedError(f"unknown critical chunk {ctype.decode()}")
        chunks.append(Chunk(ctype, payload, pos))
        pos += 12 + length
        if ctype == IEND:
            break
    if pos != end:
        raise CorruptDataError(f"{end - pos} bytes after the IEND chunk")
    if chunks[0].ctype != HEAD:
        raise CorruptDataError("first chunk is not HEAD")
    if len(chunks[-1].payload):
        raise CorruptDataError("IEND chunk is not empty")
    if sum(c.ctype == HEAD for c in chunks) != 1:
        raise CorruptDataError("file has more than one HEAD chunk")
    return chunks


def read_header(chunks, max_samples=DEFAULT_MAX_SAMPLES, modes=MODES):
    """The checked header: version, fields, a mode among `modes`, then the sample limit."""
    header = Header.unpack(chunks[0].payload)
    if header.mode not in modes:
        raise UnsupportedError(f"mode {header.mode!r} files are not supported by this version")
    if header.samples > max_samples:
        raise LimitError(f"file declares {header.samples} samples, above the limit of "
                         f"{max_samples} (raise max_samples to decode it)")
    return header
