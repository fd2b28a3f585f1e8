"""DICOM in and out (roimc.dicom, spec/dicom.md): round trips over pydicom's bundled test
files and a few made here, the dcmd chunk, and the errors."""
import io
import os
import warnings

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom import uid  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.pixels import get_decoder, pixel_array  # noqa: E402

import roimc  # noqa: E402
from roimc import dicom  # noqa: E402
from roimc.api import ancillary_chunks  # noqa: E402
from roimc.errors import CorruptDataError, InputError, UnsupportedError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PIXEL_DATA = 0x7FE00010
ENCAPSULATION = {0x7FE00001, 0x7FE00002, 0x7FE00003}


def bundled(name):
    """Path of a test file bundled with pydicom (never downloaded)."""
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def stored(ds):
    """The samples exactly as stored (what an uncompressed source's .rmc holds)."""
    return pixel_array(ds, raw=True, correct_unused_bits=False)


def roundtrip(src, tmp_path, **options):
    data = dicom.encode_dicom(src, **options)
    out = tmp_path / "out.dcm"
    dicom.decode_dicom(data, out)
    return data, str(out)


def assert_same_elements(a, b, changed=()):
    """Every data element (file meta group included) of `a` is in `b` with the same value,
    and `b` has no others; except Pixel Data, group lengths (gggg,0000) other than the file
    meta group's, and the tags in `changed` (keywords or ints)."""
    changed = {pydicom.datadict.tag_for_keyword(c) if isinstance(c, str) else c
               for c in changed}
    skip = {PIXEL_DATA, 0x00020000} | ENCAPSULATION | changed

    def keep(elem):
        return elem.tag not in skip and elem.tag.element != 0

    for da, db in ((a.file_meta, b.file_meta), (a, b)):
        ta = {e.tag for e in da if keep(e)}
        tb = {e.tag for e in db if keep(e)}
        assert ta == tb, f"elements differ: {sorted(ta ^ tb)}"
        for tag in sorted(ta):
            ea, eb = da[tag], db[tag]
            assert ea.value == eb.value, f"{tag} {ea.keyword}: {ea.value!r} != {eb.value!r}"
            if ea.VR not in (None, "UN") and eb.VR not in (None, "UN"):
                assert ea.VR == eb.VR, f"{tag} {ea.keyword}: VR {ea.VR} != {eb.VR}"


def assert_pixels_equal(src, out):
    pa, pb = read(src).pixel_array, read(out).pixel_array
    assert pa.dtype == pb.dtype and pa.shape == pb.shape
    assert np.array_equal(pa, pb)


# -------------------------------------------------------------------- uncompressed sources

UNCOMPRESSED = [
    # name, (dtype, shape), elements that change
    ("CT_small.dcm", ("int16", (128, 128)), ()),                    # signed 16-bit
    ("MR_small.dcm", ("int16", (64, 64)), ()),
    ("MR_small_implicit.dcm", ("int16", (64, 64)), ()),             # Implicit VR LE
    ("MR_small_bigendian.dcm", ("int16", (64, 64)), ()),            # Explicit VR BE
    ("image_dfl.dcm", ("uint8", (512, 512)), ()),                    # Deflated
    ("examples_rgb_color.dcm", ("uint8", (240, 320, 3)), ()),       # RGB
    ("ExplVR_BigEnd.dcm", ("uint8", (60, 80, 3)), ()),               # RGB, big endian
    ("examples_palette.dcm", ("uint8", (350, 800)), ()),            # PALETTE COLOR
    ("6154", ("uint16", (16, 16)), ()),                              # MONOCHROME1
    ("examples_overlay.dcm", ("uint16", (300, 484)), ()),           # 12 of 16 bits
    ("liver_1frame.dcm", ("uint8", (512, 512)), ()),                # 1-bit
    ("SC_rgb_small_odd.dcm", ("uint8", (3, 3, 3)), ()),              # odd length
    ("SC_ybr_full_422_uncompressed.dcm", ("uint8", (100, 100, 3)),
     ("PhotometricInterpretation",)),                                # YBR_FULL_422 -> YBR_FULL
]


@pytest.mark.parametrize("name,expect,changed", UNCOMPRESSED, ids=[c[0] for c in UNCOMPRESSED])
def test_uncompressed_roundtrip(name, expect, changed, tmp_path):
    src = bundled(name)
    data, out = roundtrip(src, tmp_path)
    a, b = read(src), read(out)
    assert b.file_meta.TransferSyntaxUID == a.file_meta.TransferSyntaxUID
    assert_same_elements(a, b, changed)
    assert_pixels_equal(src, out)
    array = roimc.decode(data)
    assert (str(array.dtype), array.shape) == expect
    assert np.array_equal(array, stored(a))
    assert np.array_equal(array, stored(b))
    if not changed:
        # the stored samples themselves come back (up to padding after the last frame)
        n = len(b.PixelData)
        assert b.PixelData[:n - 1] == a.PixelData[:n - 1]
    assert b"dcmd" in ancillary_chunks(data)
    assert "dcmd" in roimc.info(data)["chunks"]


def test_signed_values_and_palette(tmp_path):
    hu = read(bundled("CT_small.dcm")).pixel_array.astype(np.int16) - 1024

    def edit(ds):
        ds.PixelData = hu.astype("<i2").tobytes()

    ct = _derived("CT_small.dcm", tmp_path, "hu.dcm", edit)
    array = roimc.decode(dicom.encode_dicom(ct))
    assert array.dtype == np.int16 and array.min() < 0
    assert np.array_equal(array, hu) and np.array_equal(array, read(ct).pixel_array)
    pal = bundled("examples_palette.dcm")
    data, out = roundtrip(pal, tmp_path)
    b = read(out)
    assert b.PhotometricInterpretation == "PALETTE COLOR"
    assert np.array_equal(roimc.decode(data), read(pal).pixel_array)   # the indices
    assert b.RedPaletteColorLookupTableData == read(pal).RedPaletteColorLookupTableData


def test_ybr_full_422_keeps_stored_samples(tmp_path):
    src = bundled("SC_ybr_full_422_uncompressed.dcm")
    data, out = roundtrip(src, tmp_path)
    b = read(out)
    assert b.PhotometricInterpretation == "YBR_FULL"
    # the .rmc holds YCbCr (subsampling expanded), not RGB; pixel_array converts both alike
    assert np.array_equal(roimc.decode(data), pixel_array(read(src), raw=True))
    assert_pixels_equal(src, out)


def _derived(src, tmp_path, name, edit):
    """A copy of a bundled file, changed by edit(ds), written as tmp_path/name."""
    ds = read(bundled(src))
    edit(ds)
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return str(path)


def test_multiframe_narrow_frames_stay_frames(tmp_path):
    # 5 frames of 8 x 3: an (F, H, W) array whose last axis could pass for channels
    frames = np.arange(5 * 8 * 3, dtype=np.int16).reshape(5, 8, 3) * 37 - 900

    def edit(ds):
        ds.Rows, ds.Columns, ds.NumberOfFrames = 8, 3, 5
        ds.PixelData = frames.astype("<i2").tobytes()

    src = _derived("MR_small.dcm", tmp_path, "frames.dcm", edit)
    data, out = roundtrip(src, tmp_path)
    array = roimc.decode(data)
    assert array.shape == (5, 8, 3) and roimc.info(data)["frames"] == 5
    assert np.array_equal(array, frames)
    assert_same_elements(read(src), read(out))
    assert_pixels_equal(src, out)


def test_multiframe_rgb_uncompressed(tmp_path):
    # decompress pydicom's 2-frame RLE file into a native multi-frame RGB source
    def edit(ds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.decompress()

    src = _derived("SC_rgb_rle_2frame.dcm", tmp_path, "rgb2.dcm", edit)
    data, out = roundtrip(src, tmp_path)
    assert roimc.decode(data).shape == (2, 100, 100, 3)
    assert_same_elements(read(src), read(out))
    assert_pixels_equal(src, out)


def test_planar_configuration_1(tmp_path):
    rgb = read(bundled("examples_rgb_color.dcm")).pixel_array

    def edit(ds):
        ds.PlanarConfiguration = 1
        ds.PixelData = rgb.transpose(2, 0, 1).tobytes()

    src = _derived("examples_rgb_color.dcm", tmp_path, "planar.dcm", edit)
    data, out = roundtrip(src, tmp_path)
    assert np.array_equal(roimc.decode(data), rgb)
    b = read(out)
    assert b.PlanarConfiguration == 1 and b.PixelData == read(src).PixelData
    assert_pixels_equal(src, out)


def test_unused_high_bits_are_kept(tmp_path):
    # 12 stored bits, signed, with junk in the 4 unused bits: pixel_array masks it out,
    # the .rmc keeps the stored words, and the rebuilt Pixel Data is byte-identical
    ct = read(bundled("CT_small.dcm")).pixel_array
    words = (ct.astype(np.int32) & 0x0FFF | 0x5000).astype(np.uint16)

    def edit(ds):
        ds.BitsStored, ds.HighBit = 12, 11
        ds.PixelData = words.astype("<u2").tobytes()

    src = _derived("CT_small.dcm", tmp_path, "junk.dcm", edit)
    data, out = roundtrip(src, tmp_path)
    assert read(out).PixelData == read(src).PixelData
    assert np.array_equal(roimc.decode(data).view(np.uint16), words)
    assert_pixels_equal(src, out)


def test_signed_8_bit(tmp_path):
    values = (np.arange(64 * 64).reshape(64, 64) % 251 - 125).astype(np.int8)

    def edit(ds):
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 1
        ds.PixelData = values.tobytes()
        ds["PixelData"].VR = "OB"

    src = _derived("MR_small.dcm", tmp_path, "int8.dcm", edit)
    data, out = roundtrip(src, tmp_path)
    array = roimc.decode(data)
    assert array.dtype == np.int8 and np.array_equal(array, values)
    assert_pixels_equal(src, out)


def test_bare_data_set_gets_file_meta(tmp_path):
    # no preamble, no 'DICM', no file meta group: implicit VR little endian
    ds = read(bundled("MR_small.dcm"))
    del ds.file_meta
    ds.preamble = None
    src = tmp_path / "bare"
    ds.save_as(src, implicit_vr=True, little_endian=True)
    assert open(src, "rb").read(2) == b"\x08\x00"
    data, out = roundtrip(src, tmp_path)
    b = read(out)
    assert b.file_meta.TransferSyntaxUID == uid.ImplicitVRLittleEndian
    assert b.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    ref = read(bundled("MR_small.dcm"))
    assert np.array_equal(b.pixel_array, ref.pixel_array)
    for elem in ref:
        if elem.tag != PIXEL_DATA:
            assert b[elem.tag].value == elem.value


# -------------------------------------------------------------------- compressed sources

COMPRESSED = [
    # name, shape, Photometric Interpretation of the rebuilt file
    ("MR_small_RLE.dcm", (64, 64), "MONOCHROME2"),                  # RLE, signed
    ("SC_rgb_rle_16bit_2frame.dcm", (2, 100, 100, 3), "RGB"),       # RLE, multi-frame
    ("examples_ybr_color.dcm", (30, 240, 320, 3), "RGB"),           # JPEG, YBR_FULL_422
    ("SC_rgb_dcmtk_+eb+cy+n1.dcm", (100, 100, 3), "RGB"),           # JPEG, YBR_FULL
    ("MR_small_jp2klossless.dcm", (64, 64), "MONOCHROME2"),         # JPEG 2000 lossless
    ("examples_jpeg2k.dcm", (480, 640, 3), "RGB"),                  # JPEG 2000, YBR_RCT
    ("MR_small_jpeg_ls_lossless.dcm", (64, 64), "MONOCHROME2"),     # JPEG-LS
    ("SC_rgb_jpeg_gdcm.dcm", (100, 100, 3), "RGB"),                  # JPEG Lossless SV1
]

PLUGIN_NAMES = {
    uid.JPEGBaseline8Bit: "pylibjpeg-libjpeg",
    uid.JPEGLosslessSV1: "pylibjpeg-libjpeg",
    uid.JPEGLSLossless: "pylibjpeg-libjpeg",
    uid.JPEG2000Lossless: "pylibjpeg-openjpeg",
    uid.JPEG2000: "pylibjpeg-openjpeg",
}


@pytest.mark.parametrize("name,shape,pi", COMPRESSED, ids=[c[0] for c in COMPRESSED])
def test_compressed_roundtrip(name, shape, pi, tmp_path):
    src = bundled(name)
    a = read(src)
    ts = a.file_meta.TransferSyntaxUID
    if not get_decoder(ts).is_available:
        with pytest.raises(UnsupportedError) as info:
            dicom.encode_dicom(src)
        assert PLUGIN_NAMES[ts] in str(info.value) and ts.name in str(info.value)
        return
    data, out = roundtrip(src, tmp_path)
    b = read(out)
    assert b.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert dicom.dataset_of(data).file_meta.TransferSyntaxUID == ts   # source recorded
    assert b.PhotometricInterpretation == pi
    changed = ["TransferSyntaxUID"]
    if a.PhotometricInterpretation != pi:
        changed.append("PhotometricInterpretation")
    assert_same_elements(a, b, changed)
    assert_pixels_equal(src, out)
    array = roimc.decode(data)
    assert array.shape == shape
    assert np.array_equal(array, a.pixel_array) and array.dtype == a.pixel_array.dtype
    assert b["PixelData"].VR == ("OB" if b.BitsAllocated == 8 else "OW")
    assert not b["PixelData"].is_undefined_length


def test_missing_plugin_message(monkeypatch):
    # whatever is installed here: a decoder without plugins names the packages to install
    src = bundled("MR_small_jp2klossless.dcm")
    decoder = get_decoder(uid.JPEG2000Lossless)
    monkeypatch.setattr(type(decoder), "is_available", property(lambda self: False))
    with pytest.raises(UnsupportedError) as info:
        dicom.encode_dicom(src)
    message = str(info.value)
    assert "pylibjpeg-openjpeg" in message and "JPEG 2000" in message
    assert "\n" not in message


# -------------------------------------------------------------------- the dcmd chunk

def test_dcmd_chunk_is_brotli_part10_without_pixel_data():
    import brotli
    src = bundled("MR_small_RLE.dcm")
    data = dicom.encode_dicom(src)
    stream = brotli.decompress(ancillary_chunks(data)[b"dcmd"])
    assert stream[128:132] == b"DICM"
    ds = pydicom.dcmread(io.BytesIO(stream))
    assert "PixelData" not in ds
    assert ds.file_meta.TransferSyntaxUID == uid.RLELossless
    assert ds.SOPInstanceUID == read(src).SOPInstanceUID


def test_encode_options_pass_through(tmp_path):
    src = bundled("CT_small.dcm")
    data = dicom.encode_dicom(src, coder="huffman", tile_size=48, threads=2,
                              metadata={"source": "ct"}, ancillary={b"note": b"hi"})
    info = roimc.info(data)
    assert info["tile"] == [48, 48] and info["metadata"] == {"source": "ct"}
    assert ancillary_chunks(data)[b"note"] == b"hi"
    dicom.decode_dicom(data, tmp_path / "x.dcm")
    assert_pixels_equal(src, tmp_path / "x.dcm")


def test_encode_refuses_layout_and_dcmd_options():
    src = bundled("CT_small.dcm")
    with pytest.raises(InputError):
        dicom.encode_dicom(src, channels_last=True)
    with pytest.raises(InputError):
        dicom.encode_dicom(src, ancillary={b"dcmd": b""})


# -------------------------------------------------------------------- errors

def test_not_dicom(tmp_path, repo_root):
    text = tmp_path / "notes.dcm"
    text.write_text("hello, this is not DICOM\n" * 20)
    png = repo_root / "roimc" / "samples" / "ct_small.png"
    for path in (text, png):
        with pytest.raises(InputError) as info:
            dicom.encode_dicom(path)
        assert "not a DICOM file" in str(info.value)
    with pytest.raises(InputError, match="no such file"):
        dicom.encode_dicom(tmp_path / "missing.dcm")
    with pytest.raises(InputError):
        dicom.encode_dicom(tmp_path)


def test_no_pixel_data():
    with pytest.raises(InputError, match="no Pixel Data"):
        dicom.encode_dicom(bundled("rtplan.dcm"))


def test_32_bit_unsupported():
    with pytest.raises(UnsupportedError, match="Bits Allocated 32"):
        dicom.encode_dicom(bundled("rtdose_1frame.dcm"))


def test_truncated_pixel_data():
    with pytest.raises(InputError, match="cannot decode"):
        dicom.encode_dicom(bundled("MR_truncated.dcm"))


def test_decode_without_dcmd(tmp_path):
    data = roimc.encode(np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError) as info:
        dicom.decode_dicom(data, tmp_path / "x.dcm")
    assert str(info.value) == ("file was not encoded from DICOM; decode to .png/.tif/.npy "
                               "instead")
    assert not (tmp_path / "x.dcm").exists()


def test_damaged_dcmd(tmp_path):
    import brotli
    out = tmp_path / "x.dcm"
    out.write_bytes(b"keep me")
    image = np.zeros((8, 8), np.uint8)
    for payload in (b"not brotli at all", brotli.compress(b"not DICOM either" * 20)):
        data = roimc.encode(image, ancillary={b"dcmd": payload})
        with pytest.raises(CorruptDataError):
            dicom.decode_dicom(data, out)
    # a real data set that does not describe the pixels of the file
    dcmd = ancillary_chunks(dicom.encode_dicom(bundled("CT_small.dcm")))[b"dcmd"]
    for wrong in (image, np.zeros((128, 128), np.uint16)):
        data = roimc.encode(wrong, ancillary={b"dcmd": dcmd})
        with pytest.raises(CorruptDataError):
            dicom.decode_dicom(data, out)
    assert out.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["x.dcm"]


def test_is_dicom_path(tmp_path):
    assert dicom.is_dicom_path("scan.dcm") and dicom.is_dicom_path("SCAN.DICOM")
    assert not dicom.is_dicom_path("scan.png") and not dicom.is_dicom_path("scan.rmc")
    real = open(bundled("CT_small.dcm"), "rb").read()
    for name in ("IM000001", "1.2.840.113619.2.55.3"):
        (tmp_path / name).write_bytes(real)
        assert dicom.is_dicom_path(tmp_path / name)
    (tmp_path / "README").write_text("x" * 200)
    assert not dicom.is_dicom_path(tmp_path / "README")
    assert not dicom.is_dicom_path(tmp_path / "absent")
    assert not dicom.is_dicom_path(os.fspath(tmp_path / "short"))
