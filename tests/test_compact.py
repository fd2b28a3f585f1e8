"""The compact framing (spec 2.6, version 1.13): the same chunks as the chunked framing, each
error of 2.6 refused with its class, the encoder's default, and a file built from the spec's
text alone."""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roimc
from roimc import container
from roimc.container import COMPACT_SIGNATURE, HEAD, IEND, SIGNATURE, TILE, Header

CODES = [b"HEAD", b"TILE", b"IEND", b"dsum", b"meta", b"NEAR", b"MASK", b"GRAD", b"FILT",
         b"PLTE", b"LATN", b"DCID"]   # spec 2.6: code k names CODES[k - 1]


def leb(n):
    """LEB128 as spec 2.6 words it, written independently of the container module."""
    out = []
    while True:
        out.append(n % 128)
        n //= 128
        if n == 0:
            break
    return bytes([b | 0x80 for b in out[:-1]] + [out[-1]])


def spec_file(records):
    """A compact file from (code or 4-byte type, stored payload) records; IEND's record and
    the file CRC are added."""
    body = bytearray(b"\x89rmc")
    for ctype, payload in list(records) + [(3, b"")]:
        body += bytes([ctype]) if isinstance(ctype, int) else b"\0" + ctype
        body += leb(len(payload)) + payload
    return bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))


def spec_head(fields, extra=b""):
    """A compact HEAD payload: the 14 fields of Section 4 as LEB128, the offset zigzagged."""
    fields = list(fields)
    fields[-1] = 2 * fields[-1] if fields[-1] >= 0 else -2 * fields[-1] - 1
    return b"".join(leb(v) for v in fields) + extra


# a 3 x 2 uint8 image, one coder-2 (raw) tile of 8 bits per sample
HEAD_FIELDS = [1, 0, 0, 0, 3, 2, 1, 1, 8, 0, 0, 1024, 1024, 0]
PIXELS = np.array([[1, 2, 3], [250, 0, 7]], np.uint8)
RAW_TILE = leb(0) + leb(0) + bytes([2]) + PIXELS.tobytes()


def test_signature_and_codes():
    assert COMPACT_SIGNATURE == bytes([0x89, 0x72, 0x6D, 0x63])
    assert container.CODED == tuple(CODES)
    assert SIGNATURE[:4] != COMPACT_SIGNATURE


def test_file_built_from_the_spec_decodes():
    data = spec_file([(1, spec_head(HEAD_FIELDS)), (2, RAW_TILE)])
    assert np.array_equal(roimc.decode(data), PIXELS)
    info = roimc.info(data)
    assert info["framing"] == "compact" and info["bytes"] == len(data) == 4 + 18 + 11 + 2 + 4
    chunks = container.parse(data)
    assert [c.ctype for c in chunks] == [HEAD, TILE, IEND]
    assert chunks[0].payload == Header(width=3, height=2).pack()
    assert chunks[1].payload == b"\0" * 8 + bytes([2]) + PIXELS.tobytes()


def test_negative_offset_and_appended_head_bytes():
    fields = [1, 3, 0, 3, 3, 2, 1, 1, 9, 0, 0, 5, 7, -300]   # int16, 9 bits, offset -300
    data = spec_file([(1, spec_head(fields, b"later")), (0, b"")][:1])
    head = container.parse(data)[0].payload
    assert head == struct.pack(">BBBBIIIBBBBIIi", *fields) + b"later"
    h = Header.unpack(head)
    assert (h.offset, h.tile_width, h.tile_height, h.version) == (-300, 5, 7, (1, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"dsum", b"meta", b"zzzz", b"tIME", b"aBcD"]),
                          st.sampled_from([0, 1, 127, 128, 300, 16383, 16384])),
                max_size=5),
       st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=40))
def test_pack_parse_round_trip_in_both_framings(extra, frame, tile, stream):
    head = Header(width=5, height=4, version=(1, 7)).pack() + b"appended"
    chunks = [(HEAD, head), (TILE, struct.pack(">II", frame, tile) + stream)]
    chunks += [(t, bytes([n % 251]) * n) for t, n in extra] + [(IEND, b"")]
    compact = container.pack(chunks, "compact")
    chunked = container.pack(chunks, "chunked")
    assert container.framing_of(compact) == "compact"
    assert container.framing_of(chunked) == "chunked"
    for data in (compact, chunked):
        assert [(c.ctype, c.payload) for c in container.parse(data)] == chunks
    # per chunk: a code (or 0 and the type), the LEB128 length; HEAD and TILE shrink
    lengths = [len(p) for t, p in chunks[2:]]
    expected = 4 + 4 + sum(1 + (4 if t not in CODES else 0) + len(leb(n)) + n
                           for (t, _), n in zip(chunks[2:], lengths))
    head_c = spec_head(list(struct.unpack_from(">BBBBIIIBBBBIIi", head)), b"appended")
    tile_c = leb(frame) + leb(tile) + stream
    expected += 2 + len(leb(len(head_c))) + len(head_c) + len(leb(len(tile_c))) + len(tile_c)
    assert len(compact) == expected


def test_offsets_are_positions_in_the_compact_file():
    data = spec_file([(1, spec_head(HEAD_FIELDS)), (2, RAW_TILE)])
    offsets = [c.offset for c in container.parse(data)]
    assert offsets == [4, 4 + 18, 4 + 18 + 11]


# --- errors of 2.6 ---------------------------------------------------------------------------

GOOD = spec_file([(1, spec_head(HEAD_FIELDS)), (2, RAW_TILE)])


def test_every_truncation_is_damage():
    for n in range(len(GOOD)):
        with pytest.raises(roimc.FormatError) as err:
            container.parse(GOOD[:n])
        assert n < 4 or isinstance(err.value, roimc.CorruptDataError), n


def test_every_bit_flip_is_refused_as_damage():
    for pos in range(8 * 4, 8 * len(GOOD)):   # after the signature
        damaged = bytearray(GOOD)
        damaged[pos // 8] ^= 0x80 >> (pos % 8)
        with pytest.raises(roimc.CorruptDataError):
            container.parse(bytes(damaged))


@pytest.mark.parametrize("record", [
    (13, b""), (255, b""),                       # a code above 12 (E3)
    (0, b"HEAD"), (0, b"dsum"),                  # code 0 naming a coded type (E3)
])
def test_invalid_type_codes(record):
    code, payload = record
    body = bytearray(b"\x89rmc\x01" + leb(len(spec_head(HEAD_FIELDS))) + spec_head(HEAD_FIELDS))
    body += bytes([code]) + payload + b"\x00"
    body += b"\x03\x00"
    data = bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))
    with pytest.raises(roimc.CorruptDataError, match="type"):
        container.parse(data)


@pytest.mark.parametrize("ctype", [b"zz1z", b"\0\0\0\0", b"zz z", b"\xffzzz"])
def test_escaped_type_must_be_letters(ctype):
    with pytest.raises(roimc.CorruptDataError, match="type"):
        container.parse(spec_file([(1, spec_head(HEAD_FIELDS)), (ctype, b"abc")]))


@pytest.mark.parametrize("length", [b"\x80\x00", b"\x83\x00", b"\x80\x80\x80\x80\x08",
                                    b"\xff\xff\xff\xff\x0f", b"\x90\x4e"])
def test_bad_lengths(length):
    """Not minimal, 2^31 or more, or beyond the file (E4)."""
    body = bytearray(b"\x89rmc\x01" + leb(len(spec_head(HEAD_FIELDS))) + spec_head(HEAD_FIELDS))
    body += b"\x04" + length + b"\0\0\0\0" + b"\x03\x00"
    data = bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))
    with pytest.raises(roimc.CorruptDataError, match="length|declares"):
        container.parse(data)


def test_file_crc_and_trailing_bytes():
    damaged = GOOD[:-1] + bytes([GOOD[-1] ^ 1])
    with pytest.raises(roimc.CorruptDataError, match="CRC"):
        container.parse(damaged)
    for extra in (b"\0", GOOD):
        with pytest.raises(roimc.CorruptDataError, match="after the file CRC"):
            container.parse(GOOD + extra)


@pytest.mark.parametrize("ctype", [b"PRED", b"ABCD", b"Zzzz"])
def test_unknown_critical_chunk_is_unsupported_once_the_crc_holds(ctype):
    data = spec_file([(1, spec_head(HEAD_FIELDS)), (ctype, b"x"), (2, RAW_TILE)])
    with pytest.raises(roimc.UnsupportedError):
        container.parse(data)
    damaged = bytearray(data)
    damaged[-5] ^= 1   # the same file damaged: damage, not an unknown chunk
    with pytest.raises(roimc.CorruptDataError):
        container.parse(bytes(damaged))


def test_unknown_ancillary_chunk_is_kept_and_skipped():
    data = spec_file([(1, spec_head(HEAD_FIELDS)), (b"zzzz", b"hello"), (2, RAW_TILE)])
    assert [c.ctype for c in container.parse(data)] == [HEAD, b"zzzz", TILE, IEND]
    assert np.array_equal(roimc.decode(data), PIXELS)


def test_chunk_order_rules_of_2_5_hold():
    head = (1, spec_head(HEAD_FIELDS))
    for records, message in [([(2, RAW_TILE), head], "first chunk"),
                             ([head, head, (2, RAW_TILE)], "more than one HEAD")]:
        with pytest.raises(roimc.CorruptDataError, match=message):
            container.parse(spec_file(records))
    body = bytearray(b"\x89rmc\x01" + leb(len(head[1])) + head[1] + b"\x03\x01x")
    with pytest.raises(roimc.CorruptDataError, match="IEND"):
        container.parse(bytes(body) + struct.pack(">I", zlib.crc32(bytes(body))))


@pytest.mark.parametrize("payload,error,message", [
    (b"", roimc.CorruptDataError, "too short"),                    # E11
    (leb(1), roimc.CorruptDataError, "too short"),                 # E11
    (leb(2), roimc.CorruptDataError, "too short"),                 # E11 before E12
    (leb(1) + b"\x80", roimc.CorruptDataError, "too short"),       # the cut number is missing
    (leb(2) + leb(0), roimc.UnsupportedError, "version 2"),         # E12 before E13
    (leb(2) + leb(0) + b"\0" * 12, roimc.UnsupportedError, "version 2"),   # E12
    (spec_head(HEAD_FIELDS)[:-1], roimc.CorruptDataError, "13 fields"),   # E13
    (b"\x81\x00" + spec_head(HEAD_FIELDS)[1:], roimc.CorruptDataError, "malformed"),
    (spec_head([1, 256] + HEAD_FIELDS[2:]), roimc.CorruptDataError, "out-of-range"),
    (spec_head(HEAD_FIELDS[:4] + [2**32] + HEAD_FIELDS[5:]), roimc.CorruptDataError,
     "out-of-range"),
    (spec_head(HEAD_FIELDS[:13] + [2**31]), roimc.CorruptDataError, "out-of-range"),
])
def test_compact_head_errors(payload, error, message):
    data = spec_file([(1, payload), (2, RAW_TILE)])
    with pytest.raises(error, match=message):
        roimc.decode(data)


@pytest.mark.parametrize("tile", [b"", leb(0), b"\x80\x00" + leb(0) + b"\x02",
                                  leb(2**32) + leb(0) + b"\x02", leb(0) + b"\x80"])
def test_compact_tile_index_errors(tile):
    with pytest.raises(roimc.CorruptDataError, match="TILE"):
        roimc.decode(spec_file([(1, spec_head(HEAD_FIELDS)), (2, tile)]))


def test_compact_tile_without_coder_is_e19():
    with pytest.raises(roimc.CorruptDataError, match="tile chunk .* too short"):
        roimc.decode(spec_file([(1, spec_head(HEAD_FIELDS)), (2, leb(0) + leb(0))]))


def test_largest_offset_and_indices_round_trip():
    for offset in (-2**31, 2**31 - 1):
        fields = HEAD_FIELDS[:13] + [offset]
        head = container.parse(spec_file([(1, spec_head(fields))]))[0].payload
        assert struct.unpack_from(">i", head, 28) == (offset,)
    tile = leb(2**32 - 1) + leb(2**32 - 1) + b"\x02"
    chunk = container.parse(spec_file([(1, spec_head(HEAD_FIELDS)), (2, tile)]))[1]
    assert chunk.payload == b"\xff" * 8 + b"\x02"


# --- the encoder -----------------------------------------------------------------------------

def test_encoder_writes_compact_by_default_and_chunked_on_request():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 4096, size=(30, 41)).astype(np.uint16)
    mask = np.zeros((30, 41), bool)
    mask[5:20, 8:30] = True
    for kwargs in (dict(tile_size=16), dict(mode="near-lossless", max_error=3, roi=mask,
                                            grade=5, post_filter=True)):
        compact = roimc.encode(a, **kwargs)
        chunked = roimc.encode(a, framing="chunked", **kwargs)
        assert compact.startswith(COMPACT_SIGNATURE) and chunked.startswith(SIGNATURE)
        assert [(c.ctype, c.payload) for c in container.parse(compact)] == \
            [(c.ctype, c.payload) for c in container.parse(chunked)]
        assert np.array_equal(roimc.decode(compact), roimc.decode(chunked))
        info, info_chunked = roimc.info(compact), roimc.info(chunked)
        assert info["framing"] == "compact" and info_chunked["framing"] == "chunked"
        assert info["version"] == info_chunked["version"]   # the chunks set the version
        n = sum(c["count"] for c in info["chunks"].values())
        assert len(chunked) - len(compact) >= 10 * n


def test_repacking_changes_no_chunk():
    a = np.arange(64, dtype=np.uint8).reshape(8, 8)
    data = roimc.encode(a, metadata={"a": 1}, ancillary={b"zzzz": b"x" * 200})
    chunks = [(c.ctype, c.payload) for c in container.parse(data)]
    assert container.pack(chunks, "compact") == data
    assert np.array_equal(roimc.decode(container.pack(chunks, "chunked")), a)


def test_framing_option_errors():
    a = np.zeros((2, 2), np.uint8)
    with pytest.raises(roimc.InputError, match="framing"):
        roimc.encode(a, framing="png")
    with pytest.raises(roimc.FormatError, match="framing"):
        container.pack([(HEAD, Header(width=1, height=1).pack()), (IEND, b"")], "png")
    with pytest.raises(roimc.FormatError, match="HEAD"):
        container.pack([(HEAD, b"\x01\x00"), (IEND, b"")], "compact")


def test_worked_example_21_1_in_both_framings():
    a = np.array([[0, 0], [0, 5]], np.uint8)
    chunked = bytes.fromhex(
        "89524d430d0a1a0a 00000020 48454144 01000000 00000002 00000002 00000001 01030000"
        "00000200 00000200 00000000 c6c5c025 0000000a 54494c45 00000000 00000000 00e2"
        "09766a8a 00000004 6473756d 512e2b93 885aa8aa 00000000 49454e44 ae426082")
    compact = bytes.fromhex("89726d63 01 10 01000000020201010300008004800400 02 04 00 00 00 e2"
                            "04 04 512e2b93 03 00 cba8e593")
    assert roimc.encode(a, tile_size=512, effort=1, framing="chunked") == chunked
    assert roimc.encode(a, tile_size=512, effort=1) == compact
    assert np.array_equal(roimc.decode(compact), a)
