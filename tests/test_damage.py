"""Damaged, foreign and hostile inputs are refused with an RmcError; never wrong pixels,
never another exception type, never a crash or a hang."""
import random
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest

import roimc
from roimc import container, core
from roimc.container import DSUM, HEAD, IEND, SIGNATURE, TILE, Header

EXPECTED = (roimc.FormatError, roimc.CorruptDataError)


def _smooth(shape, bits, seed):
    rng = np.random.default_rng(seed)
    steps = rng.integers(-2, 3, size=shape)
    v = np.cumsum(np.cumsum(steps, axis=1), axis=0) + (1 << (bits - 1))
    return (v % (1 << bits)).astype(np.uint8 if bits <= 8 else np.uint16)


def _few_colours(shape, seed):
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(5, 3)).astype(np.uint8)
    return colours[rng.integers(0, 5, size=shape)]


SAMPLES = {
    "gray8": dict(array=_smooth((21, 19), 8, 1), effort=1),
    "gray16": dict(array=_smooth((17, 23), 16, 2), effort=1),
    "gray12_huffman": dict(array=_smooth((19, 17), 12, 3), coder="huffman"),
    "rgb8": dict(array=np.stack([_smooth((13, 15), 8, s) for s in (4, 5, 6)], axis=-1),
                 effort=1),
    "multitile": dict(array=_smooth((40, 50), 10, 7), tile_size=16, effort=1),
    # version 1.1: coder 3 (with and without fitted predictors) and the palette transform
    "gray8_cm": dict(array=_smooth((21, 19), 8, 12), effort=5),
    "gray16_cm_nofit": dict(array=_smooth((17, 23), 16, 13), effort=2),
    "rgb8_cm_multitile": dict(array=np.stack([_smooth((20, 18), 8, s) for s in (14, 15, 16)],
                                             axis=-1), effort=7, tile_size=(16, 12)),
    "gray12_palette": dict(array=(_smooth((18, 16), 4, 17).astype(np.uint16) * 250 + 3),
                           effort=5),
    "rgb8_palette": dict(array=_few_colours((15, 17), 18), effort=5),
    "frames_huffman": dict(array=np.stack([_smooth((9, 11), 8, s) for s in (8, 9)]),
                           coder="huffman", tile_size=(5, 7), effort=1),
    # noise: the entropy coder would expand these tiles, so they are stored raw
    "noise_rgb_fallback": dict(array=np.random.default_rng(10).integers(
        0, 256, size=(11, 13, 3)).astype(np.uint8)),
    "raw16": dict(array=_smooth((9, 10), 16, 11), coder="raw", tile_size=(4, 6), effort=1),
}


def encoded(name, framing="compact"):
    spec = dict(SAMPLES[name])
    array = spec.pop("array")
    return array, roimc.encode(array, framing=framing, **spec)


def rebuild(chunks):
    """Pack (type, payload) pairs or Chunk objects into a file with correct CRCs."""
    return container.pack([(c.ctype, c.payload) if hasattr(c, "ctype") else c for c in chunks])


def raw_chunk(ctype, payload, crc=None):
    crc = zlib.crc32(payload, zlib.crc32(ctype)) if crc is None else crc
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", crc)


def chunk_list(data):
    return [(c.ctype, c.payload) for c in container.parse(data)]


def with_header(data, **fields):
    """The file with its HEAD chunk rewritten (CRC recomputed)."""
    chunks = chunk_list(data)
    header = Header.unpack(chunks[0][1])
    for k, v in fields.items():
        setattr(header, k, v)
    chunks[0] = (HEAD, header.pack())
    return rebuild(chunks)


def raw_header(width=8, height=8, frames=1, channels=1, bits=8, stype=0, offset=0, mode=0,
               transform=0, dims=0, tw=1024, th=1024, version=(1, 0)):
    return struct.pack(">BBBBIIIBBBBIIi", version[0], version[1], mode, stype, width, height,
                       frames, channels, bits, transform, dims, tw, th, offset)


# --- baseline --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SAMPLES)
def test_samples_decode_intact(name):
    array, data = encoded(name)
    out = roimc.decode(data)
    assert out.dtype == array.dtype and np.array_equal(out, array)


# --- truncation ------------------------------------------------------------------------------

CHUNKED = [(name, "chunked") for name in ("gray8", "multitile", "rgb8_cm_multitile")]


@pytest.mark.parametrize("name,framing", [(name, "compact") for name in SAMPLES] + CHUNKED)
def test_every_truncation_is_refused(name, framing):
    array, data = encoded(name, framing)
    lengths = range(len(data)) if len(data) <= 4096 else sorted(
        set(range(0, len(data), max(1, len(data) // 1500))) | set(range(len(data) - 64, len(data))))
    for n in lengths:
        with pytest.raises(EXPECTED):
            roimc.decode(data[:n])
        with pytest.raises(EXPECTED):
            roimc.info(data[:n])


@pytest.mark.parametrize("name", ["gray8", "multitile"])
def test_truncated_inside_tile_payload_with_fixed_crc_is_refused(name):
    """Cut the coded stream of each tile short and repair the CRC: the tile decoder itself
    must notice."""
    array, data = encoded(name)
    chunks = chunk_list(data)
    for i, (ctype, payload) in enumerate(chunks):
        if ctype != TILE:
            continue
        for cut in range(1, len(payload) - 9 + 1):
            damaged = list(chunks)
            damaged[i] = (TILE, payload[:-cut])
            with pytest.raises(roimc.CorruptDataError):
                roimc.decode(rebuild(damaged))


# --- bit flips -------------------------------------------------------------------------------

@pytest.mark.parametrize("name,framing", [(name, "compact") for name in SAMPLES] + CHUNKED)
def test_single_bit_flips_are_refused(name, framing):
    array, data = encoded(name, framing)
    bits = len(data) * 8
    positions = range(bits) if bits <= 8 * 1200 else random.Random(name).sample(range(bits), 6000)
    for pos in positions:
        damaged = bytearray(data)
        damaged[pos // 8] ^= 0x80 >> (pos % 8)
        try:
            out = roimc.decode(bytes(damaged))
        except roimc.RmcError:
            continue
        pytest.fail(f"bit {pos} flipped: decoded {out.shape} {out.dtype} without error")


@pytest.mark.parametrize("name", ["gray16", "rgb8"])
def test_byte_overwrites_are_refused(name):
    array, data = encoded(name)
    rnd = random.Random(7)
    for _ in range(1500):
        damaged = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            damaged[rnd.randrange(len(damaged))] = rnd.randrange(256)
        if bytes(damaged) == data:
            continue
        with pytest.raises(roimc.RmcError):
            roimc.decode(bytes(damaged))


# --- foreign input ---------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"", b"\x89", b"\x89RMC", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"GIF89a" + b"\0" * 20,
    b"hello world, not an image", bytes(range(256)), b"\0" * 1000,
    SIGNATURE[::-1] + b"\0" * 20,
])
def test_foreign_bytes_raise_format_error(data):
    with pytest.raises(roimc.FormatError):
        roimc.decode(data)
    with pytest.raises(roimc.FormatError):
        roimc.info(data)



def first_tile(chunks):
    """Index of the first TILE chunk in a (type, payload) list."""
    return [c[0] for c in chunks].index(TILE)

def test_random_garbage_raises_format_error():
    rnd = random.Random(3)
    for _ in range(300):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 300)))
        with pytest.raises(roimc.FormatError):
            roimc.decode(data)


def test_garbage_after_valid_signature_raises_format_error():
    rnd = random.Random(4)
    for _ in range(300):
        data = SIGNATURE + bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 300)))
        with pytest.raises(roimc.FormatError):
            roimc.decode(data)


@pytest.mark.parametrize("framing", container.FRAMINGS)
def test_damaged_signature_is_refused(framing):
    _, data = encoded("gray8", framing)
    for i in range(len(SIGNATURE)):
        damaged = bytearray(data)
        damaged[i] ^= 0x01
        with pytest.raises(roimc.FormatError):
            roimc.decode(bytes(damaged))


# --- chunk structure -------------------------------------------------------------------------

@pytest.mark.parametrize("ctype", [b"MASK", b"LATN", b"DCID", b"PRED", b"ABCD", b"Zzzz"])
def test_unknown_or_reserved_critical_chunk_is_unsupported(ctype):
    _, data = encoded("gray8")
    chunks = chunk_list(data)
    chunks.insert(len(chunks) - 1, (ctype, b"\x01\x02\x03"))
    with pytest.raises(roimc.UnsupportedError):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("ctype,payload", [(b"zzzz", b"hello"), (b"tIME", b""),
                                           (b"xYZw", bytes(1000))])
def test_unknown_ancillary_chunk_is_skipped(ctype, payload):
    array, data = encoded("rgb8")
    chunks = chunk_list(data)
    chunks.insert(len(chunks) - 1, (ctype, payload))
    chunks.insert(1, (ctype, payload))
    damaged = rebuild(chunks)
    out = roimc.decode(damaged)
    assert np.array_equal(out, array) and out.dtype == array.dtype
    assert roimc.info(damaged)["chunks"][ctype.decode()]["count"] == 2


def test_unknown_ancillary_chunk_with_bad_crc_is_refused():
    _, data = encoded("gray8", "chunked")
    iend = data.rindex(b"IEND") - 4
    damaged = data[:iend] + raw_chunk(b"zzzz", b"abc", crc=12345) + data[iend:]
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(damaged)


def test_invalid_chunk_type_characters_are_refused():
    _, data = encoded("gray8", "chunked")
    iend = data.rindex(b"IEND") - 4
    for ctype in (b"zz1z", b"\0\0\0\0", b"zz z", b"\xffzzz"):
        damaged = data[:iend] + raw_chunk(ctype, b"abc") + data[iend:]
        with pytest.raises(roimc.CorruptDataError):
            roimc.decode(damaged)


def test_missing_dsum_still_decodes_exactly():
    array, data = encoded("multitile")
    chunks = [c for c in chunk_list(data) if c[0] != DSUM]
    assert np.array_equal(roimc.decode(rebuild(chunks)), array)


def test_wrong_dsum_is_refused():
    _, data = encoded("multitile")
    chunks = chunk_list(data)
    i = [c[0] for c in chunks].index(DSUM)
    value = int.from_bytes(chunks[i][1], "big")
    chunks[i] = (DSUM, ((value ^ 1) & 0xFFFFFFFF).to_bytes(4, "big"))
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("payload", [b"", b"\0\0\0", b"\0\0\0\0\0"])
def test_dsum_of_wrong_length_is_refused(payload):
    _, data = encoded("gray8")
    chunks = chunk_list(data)
    i = [c[0] for c in chunks].index(DSUM)
    chunks[i] = (DSUM, payload)
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(chunks))


def test_wrong_tile_count_is_refused():
    _, data = encoded("multitile")
    chunks = chunk_list(data)
    tiles = [i for i, c in enumerate(chunks) if c[0] == TILE]
    assert len(tiles) == 12
    fewer = [c for i, c in enumerate(chunks) if i != tiles[-1]]
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(fewer))
    more = list(chunks)
    more.insert(tiles[-1] + 1, chunks[tiles[-1]])
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(more))
    none = [c for c in chunks if c[0] != TILE]
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(none))


def test_swapped_tiles_are_refused():
    _, data = encoded("multitile")
    chunks = chunk_list(data)
    tiles = [i for i, c in enumerate(chunks) if c[0] == TILE]
    a, b = tiles[2], tiles[5]
    chunks[a], chunks[b] = chunks[b], chunks[a]
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("frame,index", [(0, 99), (1, 0), (2**32 - 1, 0), (0, 2**32 - 1)])
def test_tile_with_wrong_position_is_refused(frame, index):
    _, data = encoded("multitile")
    chunks = chunk_list(data)
    i = first_tile(chunks)
    payload = chunks[i][1]
    chunks[i] = (TILE, struct.pack(">II", frame, index) + payload[8:])
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("payload", [b"", b"\0", b"\0" * 8])
def test_too_short_tile_chunk_is_refused(payload):
    _, data = encoded("gray8")
    chunks = chunk_list(data)
    i = first_tile(chunks)
    chunks[i] = (TILE, payload)
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("coder", [2, 3, 255])
def test_unknown_or_wrong_tile_coder_is_refused(coder):
    _, data = encoded("gray8")
    chunks = chunk_list(data)
    i = first_tile(chunks)
    payload = chunks[i][1]
    chunks[i] = (TILE, payload[:8] + bytes([coder]) + payload[9:])
    with pytest.raises(roimc.RmcError):
        roimc.decode(rebuild(chunks))


def test_tile_coded_with_other_coder_id_is_refused():
    """Relabel a golomb tile as huffman (CRC repaired): decoding must fail, not guess."""
    array, data = encoded("gray8")
    chunks = chunk_list(data)
    i = first_tile(chunks)
    payload = chunks[i][1]
    chunks[i] = (TILE, payload[:8] + b"\x01" + payload[9:])
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(chunks))


def test_trailing_byte_in_tile_stream_is_refused():
    _, data = encoded("gray8")
    chunks = chunk_list(data)
    i = first_tile(chunks)
    for extra in (b"\0", b"\x80", b"\0\0\0\0"):
        damaged = list(chunks)
        damaged[i] = (TILE, chunks[i][1] + extra)
        with pytest.raises(roimc.CorruptDataError):
            roimc.decode(rebuild(damaged))


def test_two_heads_are_refused():
    _, data = encoded("gray8")
    chunks = chunk_list(data)
    chunks.insert(1, chunks[0])
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("framing", container.FRAMINGS)
def test_bytes_after_iend_are_refused(framing):
    _, data = encoded("gray8", framing)
    for extra in (b"\0", b"x" * 20, raw_chunk(b"zzzz", b"")):
        with pytest.raises(roimc.CorruptDataError):
            roimc.decode(data + extra)


# --- header fields ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [(2, 0), (0, 9), (255, 255)])
def test_other_major_version_is_unsupported(version):
    _, data = encoded("gray8")
    chunks = chunk_list(data)
    chunks[0] = (HEAD, bytes(version) + chunks[0][1][2:])
    damaged = rebuild(chunks)
    with pytest.raises(roimc.UnsupportedError):
        roimc.decode(damaged)
    with pytest.raises(roimc.UnsupportedError):
        roimc.info(damaged)


def test_later_minor_version_with_appended_fields_decodes():
    array, data = encoded("rgb8")
    chunks = chunk_list(data)
    chunks[0] = (HEAD, bytes([1, 10]) + chunks[0][1][2:] + b"future fields")
    out = roimc.decode(rebuild(chunks))
    assert np.array_equal(out, array)
    assert roimc.info(rebuild(chunks))["version"] == "1.10"


def test_version_1_0_header_with_appended_bytes_is_refused():
    _, data = encoded("gray8")
    chunks = chunk_list(data)
    chunks[0] = (HEAD, chunks[0][1] + b"\0")
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(rebuild(chunks))


@pytest.mark.parametrize("payload", [b"", b"\x01", b"\x01\x00", b"\x01\x00" + b"\0" * 20])
def test_short_header_is_refused(payload):
    data = rebuild([(HEAD, payload), (IEND, b"")])
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(data)


@pytest.mark.parametrize("fields", [
    dict(width=2**32 - 1, height=2**32 - 1),
    dict(width=70000, height=70000),
    dict(width=2**16, height=2**15, frames=2, dims=1),
    dict(width=2**32 - 1, height=1, frames=2**32 - 1, dims=1),
    dict(width=50000, height=50000, channels=4, dims=2),
])
def test_huge_declared_size_raises_limit_error_before_allocating(fields):
    data = rebuild([(HEAD, raw_header(**fields)), (IEND, b"")])
    tracemalloc.start()
    try:
        with pytest.raises(roimc.LimitError):
            roimc.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_limit_error_is_a_format_error():
    data = rebuild([(HEAD, raw_header(width=2**20, height=2**20)), (IEND, b"")])
    with pytest.raises(roimc.FormatError):
        roimc.decode(data)
    info = roimc.info(data)
    assert info["width"] == 2**20


def test_many_tiny_tiles_without_chunks_are_refused_quickly():
    """1x1 tiles over 2**24 pixels and no TILE chunk: refused without building the layout."""
    data = rebuild([(HEAD, raw_header(width=4096, height=4096, tw=1, th=1)), (IEND, b"")])
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(roimc.CorruptDataError):
            roimc.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 64 << 20


@pytest.mark.parametrize("fields,error", [
    (dict(width=0), roimc.CorruptDataError),
    (dict(height=0), roimc.CorruptDataError),
    (dict(frames=0), roimc.CorruptDataError),
    (dict(channels=0), roimc.CorruptDataError),
    (dict(channels=5, dims=2), roimc.CorruptDataError),
    (dict(channels=3), roimc.CorruptDataError),          # channels without a channels axis
    (dict(frames=2), roimc.CorruptDataError),            # frames without a frames axis
    (dict(bits=0), roimc.CorruptDataError),
    (dict(bits=9), roimc.CorruptDataError),
    (dict(bits=17, stype=1), roimc.CorruptDataError),
    (dict(tw=0), roimc.CorruptDataError),
    (dict(th=0), roimc.CorruptDataError),
    (dict(dims=4), roimc.CorruptDataError),
    (dict(transform=1), roimc.CorruptDataError),         # rct on one channel
    (dict(offset=-1), roimc.CorruptDataError),           # below uint8
    (dict(offset=1), roimc.CorruptDataError),            # 1 + 255 above uint8
    (dict(stype=2, offset=0), roimc.CorruptDataError),   # int8, 0..255 above 127
    (dict(mode=1), roimc.CorruptDataError),              # near-lossless without NEAR chunk
    (dict(mode=2), roimc.CorruptDataError),              # lossy in a 1.0 file (E50)
    (dict(mode=4), roimc.UnsupportedError),
    (dict(stype=4), roimc.UnsupportedError),
    (dict(transform=3), roimc.UnsupportedError),
    (dict(transform=2), roimc.CorruptDataError),         # palette in a 1.0 file
    (dict(transform=2, version=(1, 1)), roimc.CorruptDataError),   # palette without PLTE
])
def test_invalid_header_fields(fields, error):
    """An 8x8 8-bit file whose header is replaced by one with a bad field."""
    chunks = chunk_list(roimc.encode((np.arange(64) * 4).reshape(8, 8).astype(np.uint8),
                                     effort=1))
    assert np.array_equal(roimc.decode(rebuild([(HEAD, raw_header())] + chunks[1:])),
                          (np.arange(64) * 4).reshape(8, 8))
    data = rebuild([(HEAD, raw_header(**fields))] + chunks[1:])
    with pytest.raises(error):
        roimc.decode(data)


@pytest.mark.parametrize("change", [dict(bits=7), dict(bits=16, sample_type="uint16"),
                                    dict(width=20), dict(width=18), dict(height=22),
                                    dict(height=20), dict(tile_width=10),
                                    dict(tile_height=20)])
def test_header_inconsistent_with_tiles_is_refused(change):
    array, data = encoded("gray8")
    damaged = with_header(data, **change)
    with pytest.raises(roimc.RmcError):
        roimc.decode(damaged)


def test_header_lying_about_layout_is_refused():
    """Declare the gray image as frames (dims flag): the DSUM still matches the samples, but
    the decoder must not hand back a different shape without complaint... or if it does, the
    pixels are the same bytes. Either way no wrong samples."""
    array, data = encoded("gray8")
    try:
        out = roimc.decode(with_header(data, dims=1))
    except roimc.RmcError:
        return
    assert np.array_equal(out.reshape(array.shape), array)


# --- bounded mutation fuzz behind the CRC ----------------------------------------------------

def _mutate(payload, rnd, keep=0):
    """Flip, overwrite, insert, delete or truncate bytes of payload[keep:]."""
    b = bytearray(payload)
    for _ in range(rnd.randint(1, 3)):
        op = rnd.randrange(6)
        n = len(b) - keep
        if op == 0 and n > 0:
            i = keep + rnd.randrange(n)
            b[i] ^= 1 << rnd.randrange(8)
        elif op == 1 and n > 0:
            b[keep + rnd.randrange(n)] = rnd.randrange(256)
        elif op == 2:
            b.insert(keep + rnd.randint(0, n), rnd.randrange(256))
        elif op == 3 and n > 0:
            del b[keep + rnd.randrange(n)]
        elif op == 4 and n > 0:
            del b[keep + rnd.randrange(n):]
        else:
            i = keep + rnd.randint(0, n)
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
    return bytes(b)


@pytest.mark.parametrize("name", SAMPLES)
def test_mutated_tile_payloads_with_repaired_crc(name):
    """With the dsum chunk present, a decode that succeeds must give the original samples."""
    array, data = encoded(name)
    chunks = chunk_list(data)
    tile_ids = [i for i, c in enumerate(chunks) if c[0] == TILE]
    rnd = random.Random(name)
    returned = 0
    for _ in range(400):
        damaged = list(chunks)
        i = rnd.choice(tile_ids)
        damaged[i] = (TILE, _mutate(chunks[i][1], rnd, keep=9))
        try:
            out = roimc.decode(rebuild(damaged), threads=1)
        except roimc.RmcError:
            continue
        returned += 1
        assert out.dtype == array.dtype and np.array_equal(out, array)


@pytest.mark.parametrize("name", SAMPLES)
def test_mutated_tile_payloads_without_dsum(name):
    """Without a checksum wrong samples cannot be detected, but every outcome is either an
    RmcError or an array of the declared shape and type with in-range samples."""
    array, data = encoded(name)
    chunks = [c for c in chunk_list(data) if c[0] != DSUM]
    tile_ids = [i for i, c in enumerate(chunks) if c[0] == TILE]
    bits = roimc.info(data)["bits"]
    rnd = random.Random("no-dsum-" + name)
    for _ in range(300):
        damaged = list(chunks)
        i = rnd.choice(tile_ids)
        damaged[i] = (TILE, _mutate(chunks[i][1], rnd, keep=9 if rnd.random() < 0.9 else 0))
        try:
            out = roimc.decode(rebuild(damaged), threads=2)
        except roimc.RmcError:
            continue
        assert out.shape == array.shape and out.dtype == array.dtype
        assert int(out.min()) >= 0 and int(out.max()) < (1 << bits)


def test_mutated_headers_with_repaired_crc():
    array, data = encoded("rgb8")
    chunks = chunk_list(data)
    rnd = random.Random(11)
    for _ in range(600):
        damaged = list(chunks)
        damaged[0] = (HEAD, _mutate(chunks[0][1], rnd))
        try:
            out = roimc.decode(rebuild(damaged), max_samples=1 << 20)
        except roimc.RmcError:
            continue
        assert out.tobytes() == array.tobytes()


def _planes(rnd, w, h, bits):
    out = []
    for b in bits:
        top = 1 << b
        kind = rnd.randrange(4)
        if kind == 0:
            p = np.full((h, w), rnd.randrange(top))
        elif kind == 1:
            p = np.random.default_rng(rnd.randrange(2**32)).integers(0, top, size=(h, w))
        elif kind == 2:
            p = (np.indices((h, w)).sum(axis=0) * rnd.randint(1, 5)) % top
        else:
            p = np.full((h, w), rnd.randrange(top))
            p[np.random.default_rng(rnd.randrange(2**32)).random((h, w)) < 0.1] = top - 1
        out.append(p)
    return np.array(out, dtype=np.int32)


def _check_tile_result(result, w, h, bits):
    assert result.shape == (len(bits), h, w) and result.dtype == np.int32
    for plane, b in zip(result, bits):
        assert int(plane.min()) >= 0 and int(plane.max()) < (1 << b)


def test_decode_tile_on_random_bytes():
    rnd = random.Random(1234)
    for _ in range(1500):
        w, h = rnd.randint(1, 40), rnd.randint(1, 40)
        bits = [rnd.randint(1, 17) for _ in range(rnd.choice([1, 1, 2, 3, 4]))]
        coder = rnd.choice([0, 1, 2])
        n = rnd.choice([0, 1, 2, 5, 17, 64, 300])
        data = bytes(rnd.randrange(256) for _ in range(n)) if rnd.random() < 0.7 else \
            bytes([rnd.choice([0, 255])]) * n
        try:
            result = core.decode_tile(data, w, h, bits, coder)
        except roimc.RmcError:
            continue
        _check_tile_result(result, w, h, bits)


def test_decode_tile_on_mutated_streams():
    rnd = random.Random(4321)
    for case in range(1500):
        w, h = rnd.randint(1, 33), rnd.randint(1, 33)
        bits = [rnd.randint(1, 17) for _ in range(rnd.choice([1, 1, 3]))]
        coder = case % 3
        planes = _planes(rnd, w, h, bits)
        stream = core.encode_tile(planes, bits, coder)
        assert np.array_equal(core.decode_tile(stream, w, h, bits, coder), planes)
        damaged = _mutate(stream, rnd)
        try:
            result = core.decode_tile(damaged, w, h, bits, coder)
        except roimc.RmcError:
            continue
        _check_tile_result(result, w, h, bits)


@pytest.mark.parametrize("coder", [0, 2])
def test_accepted_streams_are_canonical(coder):
    """Coder 0 and raw tiles have one code per image (spec Appendix B): a damaged stream that
    still decodes is exactly the stream the encoder writes for the decoded samples."""
    rnd = random.Random(500 + coder)
    accepted = 0
    for _ in range(2500):
        w, h = rnd.randint(1, 33), rnd.randint(1, 33)
        bits = [rnd.randint(1, 17) for _ in range(rnd.choice([1, 1, 3]))]
        stream = core.encode_tile(_planes(rnd, w, h, bits), bits, coder)
        damaged = _mutate(stream, rnd)
        try:
            result = core.decode_tile(damaged, w, h, bits, coder)
        except roimc.RmcError:
            continue
        accepted += 1
        assert core.encode_tile(result, bits, coder) == damaged
    assert accepted > 0


def test_huffman_table_for_an_unused_class_is_refused():
    """Spec Appendix B: one code per image. For a 1x1 1-bit zero tile the encoder writes the
    table of activity class 0 (L=1, lengths 1,0), 15 empty tables and the code '0'. The same
    stream with a non-empty table (L=1, lengths 0,1) for the unused class 1 is a second code
    for the same image: the decoder must refuse it."""
    zero = np.zeros((1, 1, 1), np.int32)
    canonical = "00001" + "10" + "00000" * 15 + "0"
    other = "00001" + "10" + "00001" + "01" + "00000" * 14 + "0"

    def pack(bits):
        bits += "0" * (-len(bits) % 8)
        return int(bits, 2).to_bytes(len(bits) // 8, "big")
    assert core.encode_tile(zero, [1], 1) == pack(canonical)
    with pytest.raises(roimc.CorruptDataError):
        core.decode_tile(pack(other), 1, 1, [1], 1)


def test_rgb_planes_outside_the_colour_transform_are_refused():
    """P0 = 255, P1 = P2 = 511 inverts to R = B = 383: a valid raw tile stream, refused."""
    array = np.array([[[255, 0, 0]]], np.uint8)
    chunks = [c for c in chunk_list(roimc.encode(array, coder="raw")) if c[0] != DSUM]
    assert roimc.info(rebuild(chunks))["bits"] == 8
    i = first_tile(chunks)
    for planes, ok in (([[[63]], [[255]], [[510]]], True), ([[[255]], [[511]], [[511]]], False)):
        tile = core.encode_tile(np.array(planes, np.int32), [8, 9, 9], core.CODERS["raw"])
        chunks[i] = (TILE, chunks[i][1][:9] + tile)
        if ok:
            assert np.array_equal(roimc.decode(rebuild(chunks)), array)
            continue
        with pytest.raises(roimc.CorruptDataError):
            roimc.decode(rebuild(chunks))


def test_decode_tile_with_wrong_parameters():
    """A valid stream decoded with the wrong size, bits or coder: error or in-range output."""
    rnd = random.Random(99)
    for case in range(600):
        w, h = rnd.randint(1, 30), rnd.randint(1, 30)
        bits = [rnd.randint(1, 17) for _ in range(rnd.choice([1, 3]))]
        coder = case % 3
        stream = core.encode_tile(_planes(rnd, w, h, bits), bits, coder)
        w2 = max(1, w + rnd.randint(-3, 3))
        h2 = max(1, h + rnd.randint(-3, 3))
        bits2 = [max(1, min(17, b + rnd.randint(-2, 2))) for b in bits]
        coder2 = rnd.choice([0, 1, 2])
        try:
            result = core.decode_tile(stream, w2, h2, bits2, coder2)
        except roimc.RmcError:
            continue
        _check_tile_result(result, w2, h2, bits2)


@pytest.mark.parametrize("width,height,bits,coder,error", [
    (0, 5, [8], 0, roimc.InputError),
    (5, 0, [8], 0, roimc.InputError),
    (5, 5, [], 0, roimc.InputError),
    (5, 5, [8] * 5, 0, roimc.InputError),
    (5, 5, [0], 0, roimc.InputError),
    (5, 5, [18], 1, roimc.InputError),
    (5, 5, [8], 6, roimc.UnsupportedError),
    (5, 5, [8], 255, roimc.UnsupportedError),
    (5, 5, [8], -1, roimc.UnsupportedError),
])
def test_decode_tile_argument_errors(width, height, bits, coder, error):
    with pytest.raises(error):
        core.decode_tile(b"\0" * 16, width, height, bits, coder)


def test_decode_tile_empty_stream_is_truncated():
    for coder in (0, 1, 2, 3):
        with pytest.raises(roimc.CorruptDataError):
            core.decode_tile(b"", 30, 30, [12], coder)


def test_huffman_decode_on_random_bytes():
    rnd = random.Random(77)
    for _ in range(1500):
        n = rnd.choice([1, 2, 3, 17, 18, 255, 256, 4096])
        count = rnd.choice([0, 1, 10, 100, 1000])
        data = bytes(rnd.randrange(256) for _ in range(rnd.choice([0, 1, 3, 20, 100, 600])))
        try:
            symbols = core.huffman_decode(data, count, n)
        except roimc.RmcError:
            continue
        assert symbols.shape == (count,) and (count == 0 or int(symbols.max()) < n)


def test_huffman_decode_on_mutated_streams():
    rnd = random.Random(78)
    for _ in range(1000):
        n = rnd.choice([2, 5, 18, 100, 300])
        count = rnd.randint(0, 300)
        probs = np.random.default_rng(rnd.randrange(2**32)).dirichlet([0.3] * n)
        symbols = np.random.default_rng(rnd.randrange(2**32)).choice(n, size=count, p=probs)
        counts = np.bincount(symbols, minlength=n)
        lengths = core.huffman_lengths(counts, rnd.choice([9, 12, 15, 24]))
        stream = core.huffman_encode(symbols, lengths)
        assert np.array_equal(core.huffman_decode(stream, count, n), symbols)
        damaged = _mutate(stream, rnd)
        try:
            out = core.huffman_decode(damaged, count, n)
        except roimc.RmcError:
            continue
        assert out.shape == (count,) and (count == 0 or int(out.max()) < n)


@pytest.mark.parametrize("n", [0, -1, 4097])
def test_huffman_decode_bad_alphabet(n):
    with pytest.raises(roimc.RmcError):
        core.huffman_decode(b"\x08\xff", 1, n)
