"""Golden vectors (tests/golden, made by make_golden.py): committed .rmc files keep decoding to
their arrays bit for bit, and the encoder keeps producing exactly the committed bytes."""
import json
from pathlib import Path

import numpy as np
import pytest

import roimc
from roimc import container

GOLDEN = Path(__file__).resolve().parent / "golden"
VECTORS = json.loads((GOLDEN / "vectors.json").read_text())


def load(name):
    return np.load(GOLDEN / f"{name}.npy", allow_pickle=False), (GOLDEN / f"{name}.rmc").read_bytes()


def test_vector_set_is_complete():
    assert len(VECTORS) >= 6
    for name in VECTORS:
        assert (GOLDEN / f"{name}.npy").is_file() and (GOLDEN / f"{name}.rmc").is_file()
    assert sorted(p.stem for p in GOLDEN.glob("*.rmc")) == sorted(VECTORS)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_golden_file_decodes_bit_exactly(name):
    array, data = load(name)
    meta = VECTORS[name]
    assert list(array.shape) == meta["shape"] and str(array.dtype) == meta["dtype"]
    assert len(data) == meta["bytes"]
    for threads in (1, 2):
        out = roimc.decode(data, threads=threads)
        assert out.dtype == array.dtype and out.shape == array.shape
        assert np.array_equal(out, array)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_encoder_reproduces_golden_bytes(name):
    array, data = load(name)
    options = dict(VECTORS[name]["options"])
    for threads in (1, 2):
        assert roimc.encode(array, threads=threads, **options) == data


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_golden_info_matches_array(name):
    array, data = load(name)
    info = roimc.info(data)
    assert info["shape"] == list(array.shape)
    assert info["dtype"] == str(array.dtype)
    # version 1.4 exactly when the file uses coder 5, else 1.3 when it uses coder 4, else 1.1
    # when it uses coder 3 or the palette transform
    chunks = container.parse(data)
    coders = {c.payload[8] for c in chunks if c.ctype == container.TILE}
    new = info["transform"] == "palette" or 3 in coders
    expected = "1.4" if 5 in coders else ("1.3" if 4 in coders else ("1.1" if new else "1.0"))
    assert info["version"] == expected and info["mode"] == "lossless"
    chunks = container.parse(data)
    assert chunks[0].ctype == container.HEAD and chunks[-1].ctype == container.IEND


def test_golden_covers_coders_and_tiling():
    coders = set()
    tiles = 0
    for name in VECTORS:
        for c in container.parse(load(name)[1]):
            if c.ctype == container.TILE:
                coders.add(c.payload[8])
        tiles = max(tiles, roimc.info(load(name)[1])["tiles"])
    assert {0, 1, 2, 3, 4, 5} <= coders    # golomb, huffman, raw, context modelling, rANS
    assert tiles > 1
    transforms = {roimc.info(load(name)[1])["transform"] for name in VECTORS}
    assert transforms == {"none", "rct", "palette"}


def test_golden_framings():
    """The vectors of 1.12 and before stay in the chunked framing; compact_* are compact."""
    framings = {}
    for name in VECTORS:
        framing = VECTORS[name]["options"].get("framing", "compact")
        assert roimc.info(load(name)[1])["framing"] == framing
        assert (framing == "compact") == name.startswith("compact_")
        framings[framing] = framings.get(framing, 0) + 1
    assert framings["compact"] >= 2 and framings["chunked"] >= 20
