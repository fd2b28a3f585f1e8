"""The .rmc container: signature, chunks, the header (spec/rmc-v1.md).

Two framings hold the same list of chunks: the chunked framing (Section 2: PNG-style, a length,
type and CRC-32 per chunk) and the compact framing (Section 2.6, version 1.13: a type code and
a LEB128 length per chunk, HEAD and the TILE indices as LEB128 numbers, one CRC-32 of the
whole file). `parse` reads either and returns the chunks in their chunked form."""
import struct
import zlib
from dataclasses import dataclass, field

from .errors import CorruptDataError, FormatError, LimitError, UnsupportedError

SIGNATURE = b"\x89RMC\r\n\x1a\n"   # the chunked framing
COMPACT_SIGNATURE = b"\x89rmc"      # the compact framing (version 1.13)
VERSION = (1, 14)   # the newest version this module reads and writes
FRAMINGS = ("compact", "chunked")

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
# the compact framing's type codes: CODED[k - 1] has code k; code 0 is followed by the type
CODED = (HEAD, TILE, IEND, DSUM, META, NEAR, MASK, GRAD, FILT, PLTE, LATN, DCID)
_CODE = {t: k + 1 for k, t in enumerate(CODED)}
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


def _is_type(ctype):
    """Four ASCII letters (Section 2.2)."""
    return all(65 <= c <= 90 or 97 <= c <= 122 for c in ctype)


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


def pack(chunks, framing="chunked"):
    """The file of `chunks` ((type, payload) pairs, HEAD first and IEND last) in `framing`:
    "chunked" (Section 2) or "compact" (Section 2.6)."""
    if framing == "chunked":
        return SIGNATURE + b"".join(pack_chunk(t, p) for t, p in chunks)
    if framing != "compact":
        raise FormatError(f"unknown framing {framing!r}: choose from {', '.join(FRAMINGS)}")
    out = bytearray(COMPACT_SIGNATURE)
    for ctype, payload in chunks:
        if ctype == HEAD:
            payload = _compact_head(payload)
        elif ctype == TILE:
            if len(payload) < 8:
                raise FormatError("TILE payload is shorter than its indices")
            frame, tile = struct.unpack_from(">II", payload)
            payload = _leb(frame) + _leb(tile) + bytes(payload[8:])
        if len(payload) >= MAX_CHUNK:
            raise FormatError("chunk payload exceeds 2 GiB")
        code = _CODE.get(ctype)
        out += bytes([code]) if code else b"\0" + ctype
        out += _leb(len(payload))
        out += payload
    return bytes(out) + struct.pack(">I", zlib.crc32(out))


def framing_of(data):
    """"compact" or "chunked", by the file's signature (not otherwise checked)."""
    return "compact" if bytes(data[:len(COMPACT_SIGNATURE)]) == COMPACT_SIGNATURE else "chunked"


def _leb(n):
    """Unsigned LEB128: 7 bits per byte, least significant group first."""
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_leb(data, pos, end, limit):
    """(value, next position) of the minimal LEB128 number at pos, below `limit`; None when
    the bytes end inside it; ValueError when it is not minimal or reaches the limit."""
    value = shift = 0
    while True:
        if pos >= end:
            return None
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if value >= limit:
            raise ValueError
        if not b & 0x80:
            if b == 0 and shift > 7:
                raise ValueError
            return value, pos


# HEAD fields in order, with the bound of each: below 2^8, 2^32, or the i32 offset (zigzag)
_HEAD_LIMITS = (1 << 8,) * 4 + (1 << 32,) * 3 + (1 << 8,) * 4 + (1 << 32,) * 2 + (1 << 32,)


def _compact_head(payload):
    if len(payload) < _HEAD.size:
        raise FormatError(f"HEAD payload has {len(payload)} bytes, expected {_HEAD.size}")
    fields = list(_HEAD.unpack_from(payload))
    offset = fields[-1]
    fields[-1] = 2 * offset if offset >= 0 else -2 * offset - 1
    return b"".join(_leb(v) for v in fields) + bytes(payload[_HEAD.size:])


def expand_head(payload):
    """The chunked HEAD payload of a compact one (Section 2.6)."""
    bad = CorruptDataError("HEAD chunk holds a malformed or out-of-range field")
    fields = []
    pos = 0
    while len(fields) < len(_HEAD_LIMITS):
        try:
            got = read_leb(payload, pos, len(payload), 1 << 32)
        except ValueError:
            raise bad from None
        if got is None:   # the payload ends: the fields from here on are missing
            break
        fields.append(got[0])
        pos = got[1]
    if len(fields) < 2:
        raise CorruptDataError("HEAD chunk is too short")
    if fields[0] != VERSION[0]:
        raise UnsupportedError(f"format version {fields[0]}.{fields[1]} is not supported "
                               f"(this roimc reads version {VERSION[0]}.x)")
    if len(fields) < len(_HEAD_LIMITS):
        raise CorruptDataError(f"HEAD chunk holds {len(fields)} fields, expected "
                               f"{len(_HEAD_LIMITS)}")
    if any(v >= limit for v, limit in zip(fields, _HEAD_LIMITS)):
        raise bad
    z = fields[-1]
    fields[-1] = z >> 1 if not z & 1 else -(z >> 1) - 1
    return _HEAD.pack(*fields) + bytes(payload[pos:])


def _expand_tile(payload):
    """The chunked TILE payload of a compact one: the indices as u32."""
    pos = 0
    indices = []
    try:
        for _ in range(2):
            got = read_leb(payload, pos, len(payload), 1 << 32)
            if got is None:
                raise ValueError
            indices.append(got[0])
            pos = got[1]
    except ValueError:
        raise CorruptDataError("TILE payload is too short or its indices are malformed") \
            from None
    return struct.pack(">II", *indices) + bytes(payload[pos:])


def _split_compact(data):
    """The chunks of a compact file (Section 2.6), payloads as stored."""
    pos = len(COMPACT_SIGNATURE)
    end = len(data)
    chunks = []
    while True:
        start = pos
        if pos >= end:
            raise CorruptDataError(f"file is truncated at byte {pos} (no IEND chunk)")
        code = data[pos]
        pos += 1
        if code == 0:
            if end - pos < 4:
                raise CorruptDataError(f"file is truncated at byte {pos} (no IEND chunk)")
            ctype = bytes(data[pos:pos + 4])
            pos += 4
            if not _is_type(ctype) or ctype in _CODE:
                raise CorruptDataError(f"invalid chunk type at byte {start}")
        elif code <= len(CODED):
            ctype = CODED[code - 1]
        else:
            raise CorruptDataError(f"invalid chunk type code {code} at byte {start}")
        try:
            got = read_leb(data, pos, end, MAX_CHUNK)
        except ValueError:
            raise CorruptDataError(f"chunk {ctype.decode()} at byte {start} has a malformed "
                                   f"length (limit 2^31 - 1)") from None
        if got is None:
            raise CorruptDataError(f"file is truncated at byte {pos} (no IEND chunk)")
        length, pos = got
        if length > end - pos:
            raise CorruptDataError(f"chunk {ctype.decode()} at byte {start} declares {length} "
                                   f"bytes, {end - pos} remain: file truncated or damaged")
        chunks.append(Chunk(ctype, bytes(data[pos:pos + length]), start))
        pos += length
        if ctype == IEND:
            break
    if end - pos < 4:
        raise CorruptDataError(f"file is truncated at byte {pos} (no file CRC after IEND)")
    (crc,) = struct.unpack_from(">I", data, pos)
    if zlib.crc32(memoryview(data)[:pos]) != crc:
        raise CorruptDataError("CRC mismatch: the file is damaged")
    pos += 4
    if pos != end:
        raise CorruptDataError(f"{end - pos} bytes after the file CRC")
    for c in chunks:   # after the CRC, so that damage reads as damage
        if is_critical(c.ctype) and c.ctype not in KNOWN_CRITICAL:
            raise UnsupportedError(f"unknown critical chunk {c.ctype.decode()}")
    return chunks


def parse(data):
    """Split a file of either framing into checked chunks, payloads in their chunked form.
    Unknown ancillary chunks are kept in the list (the decoder ignores them); an unknown
    critical chunk, a CRC mismatch, truncation or bytes after the end raise."""
    data = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
    compact = framing_of(data) == "compact"
    if compact:
        chunks = _split_compact(data)
    else:
        chunks = _split_chunked(data)
    if chunks[0].ctype != HEAD:
        raise CorruptDataError("first chunk is not HEAD")
    if len(chunks[-1].payload):
        raise CorruptDataError("IEND chunk is not empty")
    if sum(c.ctype == HEAD for c in chunks) != 1:
        raise CorruptDataError("file has more than one HEAD chunk")
    if compact:
        for c in chunks:
            if c.ctype == HEAD:
                c.payload = expand_head(c.payload)
            elif c.ctype == TILE:
                c.payload = _expand_tile(c.payload)
    return chunks


def _split_chunked(data):
    """The chunks of a chunked file (Section 2.5)."""
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
        if not _is_type(ctype):
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
