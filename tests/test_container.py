"""The .rmc container: header packing, chunk framing and CRCs, parse rules, roimc.info."""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roimc
from roimc import container
from roimc.container import (DIM_CHANNELS, DIM_FRAMES, DSUM, HEAD, IEND, SIGNATURE, TILE,
                             Header)


def test_signature_is_png_like():
    assert SIGNATURE == b"\x89RMC\r\n\x1a\n"


def test_header_is_32_bytes_big_endian():
    h = Header(width=0x01020304, height=5, frames=6, channels=3, bits=12, sample_type="uint16",
               offset=0, transform="rct", tile_width=256, tile_height=128,
               dims=DIM_FRAMES | DIM_CHANNELS)
    packed = h.pack()
    assert len(packed) == 32
    assert packed[:2] == bytes([1, 0])
    assert packed[2] == 0 and packed[3] == 1          # lossless, uint16
    assert packed[4:8] == b"\x01\x02\x03\x04"
    assert struct.unpack(">I", packed[8:12]) == (5,)


@settings(max_examples=150, deadline=None)
@given(width=st.integers(1, 2**32 - 1), height=st.integers(1, 2**32 - 1),
       frames=st.integers(1, 2**32 - 1), channels=st.integers(1, 4),
       stype=st.sampled_from(container.SAMPLE_TYPES), data=st.data(),
       mode=st.sampled_from(container.MODES),
       tw=st.integers(1, 2**32 - 1), th=st.integers(1, 2**32 - 1))
def test_header_pack_unpack_round_trip(width, height, frames, channels, stype, data, mode, tw,
                                       th):
    limit = 8 if stype.endswith("8") else 16
    bits = data.draw(st.integers(1, limit))
    if stype.startswith("int"):
        offset = data.draw(st.integers(-(1 << (limit - 1)), (1 << (limit - 1)) - (1 << bits)))
    else:
        offset = data.draw(st.integers(0, (1 << limit) - (1 << bits)))
    dims = (DIM_FRAMES if frames > 1 or data.draw(st.booleans()) else 0) | \
           (DIM_CHANNELS if channels > 1 or data.draw(st.booleans()) else 0)
    transform = data.draw(st.sampled_from(["none", "rct"])) if channels >= 3 else "none"
    h = Header(width=width, height=height, frames=frames, channels=channels, bits=bits,
               sample_type=stype, offset=offset, mode=mode, transform=transform,
               tile_width=tw, tile_height=th, dims=dims)
    h.validate()
    assert Header.unpack(h.pack()) == h


def test_header_shape_and_tiles():
    h = Header(width=100, height=50, frames=3, channels=3, dims=DIM_FRAMES | DIM_CHANNELS,
               tile_width=32, tile_height=16, transform="rct")
    assert h.shape() == (3, 50, 100, 3)
    assert h.samples == 3 * 50 * 100 * 3
    assert (h.tiles_across(), h.tiles_down(), h.tile_count()) == (4, 4, 16)
    assert Header(width=7, height=9).shape() == (9, 7)


def test_header_unpack_ignores_appended_fields_of_a_later_minor_version():
    h = Header(width=3, height=4, version=(1, 1))
    assert Header.unpack(h.pack() + b"\xff" * 17) == h


@pytest.mark.parametrize("extra", [b"\0", b"\xff" * 17])
def test_version_1_0_header_must_be_exactly_32_bytes(extra):
    with pytest.raises(roimc.CorruptDataError):
        Header.unpack(Header(width=3, height=4).pack() + extra)


def test_header_unpack_refuses_other_major_version():
    packed = bytearray(Header(width=3, height=4).pack())
    packed[0] = 2
    with pytest.raises(roimc.UnsupportedError):
        Header.unpack(bytes(packed))


def test_pack_chunk_layout_and_crc():
    chunk = container.pack_chunk(b"zzzz", b"payload")
    assert chunk[:4] == struct.pack(">I", 7)
    assert chunk[4:8] == b"zzzz" and chunk[8:15] == b"payload"
    assert struct.unpack(">I", chunk[15:])[0] == zlib.crc32(b"zzzzpayload")


def test_pack_and_parse_round_trip():
    chunks = [(HEAD, Header(width=1, height=1).pack()), (b"abcd", b"x" * 300), (TILE, b""),
              (IEND, b"")]
    data = container.pack(chunks)
    assert data.startswith(SIGNATURE)
    parsed = container.parse(data)
    assert [(c.ctype, c.payload) for c in parsed] == chunks
    offsets = [c.offset for c in parsed]
    assert offsets[0] == len(SIGNATURE)
    assert offsets[1] == len(SIGNATURE) + 12 + 32


def test_parse_checks_crc_of_type_and_payload():
    data = bytearray(container.pack([(HEAD, Header(width=1, height=1).pack()), (IEND, b"")]))
    for pos in range(len(SIGNATURE) + 4, len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x04
        with pytest.raises(roimc.CorruptDataError):
            container.parse(bytes(damaged))


def _file(*chunks):
    return container.pack(list(chunks))


HEAD_CHUNK = (HEAD, Header(width=1, height=1).pack())


def test_parse_rejects_bytes_after_iend():
    with pytest.raises(roimc.CorruptDataError):
        container.parse(_file(HEAD_CHUNK, (IEND, b"")) + b"\0")


def test_parse_rejects_missing_iend():
    with pytest.raises(roimc.CorruptDataError):
        container.parse(_file(HEAD_CHUNK))
    with pytest.raises(roimc.CorruptDataError):
        container.parse(_file(HEAD_CHUNK, (b"zzzz", b"abc")))


def test_parse_rejects_head_not_first():
    with pytest.raises(roimc.CorruptDataError):
        container.parse(_file((b"zzzz", b""), HEAD_CHUNK, (IEND, b"")))
    with pytest.raises(roimc.CorruptDataError):
        container.parse(_file((TILE, b"x"), HEAD_CHUNK, (IEND, b"")))
    with pytest.raises(roimc.CorruptDataError):
        container.parse(_file((IEND, b"")))


def test_parse_rejects_second_head():
    with pytest.raises(roimc.CorruptDataError):
        container.parse(_file(HEAD_CHUNK, HEAD_CHUNK, (IEND, b"")))


def test_parse_rejects_non_empty_iend():
    with pytest.raises(roimc.CorruptDataError):
        container.parse(_file(HEAD_CHUNK, (IEND, b"x")))


def test_parse_rejects_unknown_critical_chunk():
    with pytest.raises(roimc.UnsupportedError):
        container.parse(_file(HEAD_CHUNK, (b"QQQQ", b""), (IEND, b"")))


def test_parse_keeps_unknown_ancillary_chunks_out_of_the_way():
    parsed = container.parse(_file(HEAD_CHUNK, (b"qqqq", b"1"), (IEND, b"")))
    assert parsed[0].ctype == HEAD and parsed[-1].ctype == IEND


def test_parse_rejects_length_beyond_end():
    data = bytearray(_file(HEAD_CHUNK, (IEND, b"")))
    data[len(SIGNATURE):len(SIGNATURE) + 4] = struct.pack(">I", 2**32 - 1)
    with pytest.raises(roimc.CorruptDataError):
        container.parse(bytes(data))


def test_parse_signature_errors():
    with pytest.raises(roimc.FormatError):
        container.parse(b"")
    with pytest.raises(roimc.FormatError):
        container.parse(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(roimc.CorruptDataError):
        container.parse(b"\x89RMC\r\n\x1a\x0a"[:7] + b"X" + b"\0" * 20)


def test_critical_is_upper_case_first_letter():
    assert container.is_critical(b"HEAD") and container.is_critical(b"TILE")
    assert container.is_critical(b"Xyzw")
    assert not container.is_critical(b"dsum") and not container.is_critical(b"mETA")


# --- roimc.info ------------------------------------------------------------------------------

def test_info_fields_gray():
    a = (np.arange(30 * 40).reshape(30, 40) % 3000).astype(np.uint16)
    a[0, 0] = 4095
    data = roimc.encode(a, tile_size=(16, 32), effort=1, framing="chunked")
    info = roimc.info(data)
    assert info["version"] == "1.0" and info["framing"] == "chunked"
    assert info["mode"] == "lossless"
    assert info["shape"] == [30, 40]
    assert info["dtype"] == "uint16"
    assert (info["width"], info["height"], info["frames"], info["channels"]) == (40, 30, 1, 1)
    assert info["bits"] == 12 and info["offset"] == 0 and info["transform"] == "none"
    assert info["tile"] == [16, 32]
    assert info["tiles"] == 4
    assert info["bytes"] == len(data)
    assert info["bpp"] == pytest.approx(8 * len(data) / (30 * 40))
    assert info["chunks"]["HEAD"] == {"count": 1, "bytes": 32}
    assert info["chunks"]["TILE"]["count"] == 4
    assert info["chunks"]["dsum"] == {"count": 1, "bytes": 4}
    assert info["chunks"]["IEND"] == {"count": 1, "bytes": 0}
    framed = sum(c["bytes"] + 12 * c["count"] for c in info["chunks"].values())
    assert framed + len(SIGNATURE) == len(data)
    assert "metadata" not in info


def test_info_fields_colour_frames_signed():
    a = np.zeros((2, 5, 6, 3), np.int16) - 3
    a[1, 2, 3, 1] = 20
    info = roimc.info(roimc.encode(a, effort=1))
    assert info["shape"] == [2, 5, 6, 3]
    assert info["frames"] == 2 and info["channels"] == 3 and info["transform"] == "rct"
    assert info["dtype"] == "int16" and info["bits"] == 6 and info["offset"] == -32
    assert info["tiles"] == 2


def test_info_is_json_serialisable_and_reports_metadata():
    import json
    info = roimc.info(roimc.encode(np.zeros((4, 4), np.uint8), metadata={"a": [1, 2]}))
    assert json.loads(json.dumps(info))["metadata"] == {"a": [1, 2]}
    assert info["chunks"]["meta"]["count"] == 1


def test_info_does_not_decode_pixels():
    """info works on a file whose tiles are garbage (with valid CRCs)."""
    data = roimc.encode(np.arange(64, dtype=np.uint8).reshape(8, 8))
    chunks = [(c.ctype, b"\0" * 12 if c.ctype == TILE else c.payload)
              for c in container.parse(data)]
    damaged = container.pack(chunks)
    assert roimc.info(damaged)["shape"] == [8, 8]
    with pytest.raises(roimc.CorruptDataError):
        roimc.decode(damaged)


def test_corrupt_metadata_is_reported():
    data = roimc.encode(np.zeros((4, 4), np.uint8))
    chunks = [(c.ctype, c.payload) for c in container.parse(data)]
    chunks.insert(-1, (b"meta", b"not brotli at all"))
    damaged = container.pack(chunks)
    with pytest.raises(roimc.CorruptDataError):
        roimc.info(damaged)
    assert np.array_equal(roimc.decode(damaged), np.zeros((4, 4), np.uint8))


def test_file_layout_order():
    data = roimc.encode(np.zeros((20, 20), np.uint8), tile_size=8, metadata={"k": 1})
    types = [c.ctype for c in container.parse(data)]
    assert types[0] == HEAD and types[-1] == IEND
    assert types.count(TILE) == 9 and types.count(DSUM) == 1
