"""DICOM in and out: encode a DICOM file's pixels into .rmc, keep the rest of the file in a
`dcmd` ancillary chunk, and rebuild a DICOM file from such an .rmc (spec/dicom.md).

    data = encode_dicom("ct.dcm")            # .rmc bytes; pixels + data set
    decode_dicom(data, "back.dcm")            # same data elements, identical pixels

Needs pydicom (3.x). Compressed transfer syntaxes are decoded through pydicom's pixel
handlers, which may need a plugin (pylibjpeg-libjpeg, pylibjpeg-openjpeg, ...).
"""
import contextlib
import io
import os
import warnings

import numpy as np

from .errors import CorruptDataError, InputError, RmcError, UnsupportedError

DCMD = b"dcmd"   # ancillary chunk: brotli-compressed DICOM Part-10 stream without Pixel Data

DICOM_EXTENSIONS = (".dcm", ".dicom")
_IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".npy", ".rmc")
_MAGIC_OFFSET = 128
_MAGIC = b"DICM"
# decompressed size limit of a dcmd chunk (a data set without its pixels)
MAX_DATASET_BYTES = 1 << 30

# Elements that only describe encapsulated (compressed) Pixel Data; dropped with it.
_ENCAPSULATION_TAGS = (0x7FE00001, 0x7FE00002, 0x7FE00003)  # Extended Offset Table (+Lengths),
#                                                            Encapsulated Pixel Data Value
#                                                            Total Length
_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)

# Packages that provide pydicom decoders, by transfer syntax UID.
_LIBJPEG = "pylibjpeg and pylibjpeg-libjpeg (pip install pylibjpeg pylibjpeg-libjpeg)"
_OPENJPEG = "pylibjpeg and pylibjpeg-openjpeg (pip install pylibjpeg pylibjpeg-openjpeg)"
_PLUGINS = {
    "1.2.840.10008.1.2.4.50": _LIBJPEG,                       # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51": _LIBJPEG,                       # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57": _LIBJPEG,                       # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70": _LIBJPEG,                       # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": _LIBJPEG + " or pyjpegls",      # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": _LIBJPEG + " or pyjpegls",      # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": _OPENJPEG,                      # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91": _OPENJPEG,                      # JPEG 2000
    "1.2.840.10008.1.2.4.201": _OPENJPEG,                     # HTJ2K Lossless Only
    "1.2.840.10008.1.2.4.202": _OPENJPEG,                     # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": _OPENJPEG,                     # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg and pylibjpeg-rle",     # RLE Lossless (built in)
}


# ---------------------------------------------------------------------------------- helpers

def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise UnsupportedError("DICOM support needs pydicom: pip install pydicom") from None
    return pydicom


@contextlib.contextmanager
def _quiet():
    """pydicom reports oddities of the input as warnings; the CLI shows errors only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def is_dicom_path(path):
    """True for a .dcm/.dicom name, or for a file (of any other name that is not one of the
    image types roimc reads) whose bytes 128..131 are b"DICM"."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in DICOM_EXTENSIONS:
        return True
    if ext in _IMAGE_EXTENSIONS:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(_MAGIC_OFFSET + 4)
    except OSError:
        return False
    return head[_MAGIC_OFFSET:] == _MAGIC


def _read_dataset(path):
    """Read `path` with pydicom; a Part-10 file, or a bare data set (no preamble and file
    meta group) that starts with a group 0x0008 element and holds Pixel Data."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError
    from pydicom.dataset import FileMetaDataset
    from pydicom import uid

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, not a DICOM file")
    try:
        try:
            return pydicom.dcmread(path)
        except InvalidDicomError:
            pass
        with open(path, "rb") as f:
            head = f.read(2)
        if head not in (b"\x08\x00", b"\x00\x08"):
            raise InputError(f"{path}: not a DICOM file (no 'DICM' marker at byte 128)")
        ds = pydicom.dcmread(path, force=True)
    except RmcError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    except Exception as exc:
        raise InputError(f"{path}: cannot read DICOM file: {_one_line(exc)}") from None
    if "SOPClassUID" not in ds and _PIXEL_DATA not in ds:
        raise InputError(f"{path}: not a DICOM file (no 'DICM' marker at byte 128)")
    # A bare data set: give it the file meta group a Part-10 file needs.
    implicit, little = ds.original_encoding
    ts = (uid.ImplicitVRLittleEndian if implicit else
          uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ts
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    return ds


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _transfer_syntax(ds, path):
    from pydicom.uid import UID
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if not ts:
        raise InputError(f"{path}: the file meta group has no Transfer Syntax UID")
    return UID(str(ts))


def _ts_label(ts):
    name = ts.name if ts.is_transfer_syntax else "unknown transfer syntax"
    return f"'{name}' ({ts})"


def _decode_pixels(ds, ts, path):
    """(array, image pixel properties) of the Pixel Data of `ds`, through pydicom.

    Native (uncompressed) transfer syntaxes: the samples exactly as stored (no colour
    conversion, unused high bits kept; YBR_FULL_422 subsampling is expanded, 1-bit data
    unpacked). Compressed ones: what ds.pixel_array returns (YBR converted to RGB where
    pydicom does so, the properties say which photometric interpretation results)."""
    from pydicom.pixels import get_decoder
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise UnsupportedError(f"{path}: pixel data in transfer syntax {_ts_label(ts)} "
                               f"cannot be decoded by pydicom") from None
    if not decoder.is_available:
        plugin = _PLUGINS.get(str(ts), "a pydicom decoding plugin for it")
        raise UnsupportedError(f"{path}: decoding {_ts_label(ts)} pixel data needs {plugin}")
    try:
        if ts.is_compressed:
            return decoder.as_array(ds)
        return decoder.as_array(ds, raw=True, correct_unused_bits=False)
    except RmcError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot decode {_ts_label(ts)} pixel data: "
                         f"{_one_line(exc)}") from None


def _check_pixel_module(ds, path):
    if any(tag in ds for tag in _FLOAT_PIXEL_DATA):
        raise UnsupportedError(f"{path}: float pixel data is not supported "
                               f"(integer Pixel Data of 1, 8 or 16 bits only)")
    if _PIXEL_DATA not in ds:
        raise InputError(f"{path}: DICOM file has no Pixel Data (7FE0,0010) to encode")
    missing = [k for k in ("Rows", "Columns", "BitsAllocated") if ds.get(k) in (None, "")]
    if missing:
        raise InputError(f"{path}: DICOM file lacks {', '.join(missing)} needed to read its "
                         f"Pixel Data")
    bits = int(ds.BitsAllocated)
    if bits not in (1, 8, 16):
        raise UnsupportedError(f"{path}: Bits Allocated {bits} is not supported (roimc codes "
                               f"1-, 8- and 16-bit samples)")


def _planar(ds):
    return int(ds.get("SamplesPerPixel", 1) or 1) > 1 and int(ds.get("PlanarConfiguration",
                                                                      0) or 0) == 1


def _frames(ds):
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _apply_properties(ds, arr, props):
    """Make the Image Pixel module of `ds` describe `arr` as pydicom returned it."""
    pi = props.get("photometric_interpretation")
    if pi and str(ds.get("PhotometricInterpretation", "")) != pi:
        ds.PhotometricInterpretation = pi
    for key, kw in (("bits_allocated", "BitsAllocated"), ("bits_stored", "BitsStored"),
                    ("pixel_representation", "PixelRepresentation"),
                    ("samples_per_pixel", "SamplesPerPixel")):
        value = props.get(key)
        if value is not None and ds.get(kw) is not None and int(ds.get(kw)) != int(value):
            setattr(ds, kw, int(value))
            if kw == "BitsStored" and "HighBit" in ds:
                ds.HighBit = int(value) - 1
    frames = arr.shape[0] if _array_frames(ds, arr) else 1
    if frames != _frames(ds):
        ds.NumberOfFrames = frames


def _array_frames(ds, arr):
    """True when `arr` has a leading frames axis."""
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    return arr.ndim == (4 if spp > 1 else 3)


# ---------------------------------------------------------------------------------- encode

def read_dicom(path):
    """(pixels, data set without Pixel Data) of a DICOM file; see encode_dicom."""
    _pydicom()
    path = os.fspath(path)
    with _quiet():
        ds = _read_dataset(path)
        ts = _transfer_syntax(ds, path)
        _check_pixel_module(ds, path)
        arr, props = _decode_pixels(ds, ts, path)
        if arr.dtype.byteorder not in ("=", "|"):   # big endian data: native order, same values
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype not in (np.uint8, np.uint16, np.int8, np.int16):
            raise UnsupportedError(f"{path}: {arr.dtype} pixel samples are not supported "
                                   f"(8- and 16-bit integers only)")
        del ds[_PIXEL_DATA]
        for tag in _ENCAPSULATION_TAGS:
            if tag in ds:
                del ds[tag]
        _apply_properties(ds, arr, props)
        if not ts.is_compressed and str(ds.get("PhotometricInterpretation", "")) \
                == "YBR_FULL_422":
            ds.PhotometricInterpretation = "YBR_FULL"   # pydicom expanded the subsampling
    return arr, ds


def dataset_bytes(ds, path="data set"):
    """The DICOM Part-10 byte stream of `ds` (which holds no Pixel Data)."""
    pydicom = _pydicom()
    buf = io.BytesIO()
    try:
        with _quiet():
            ts = ds.file_meta.TransferSyntaxUID
            if ds.original_encoding != (ts.is_implicit_VR, ts.is_little_endian):
                # the body was not encoded as the file meta group says (pydicom read it
                # anyway): turn every raw element into a typed one, so it can be re-encoded
                for _ in ds.iterall():
                    pass
            pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    except Exception as exc:
        raise InputError(f"{path}: cannot serialise the DICOM data set: {_one_line(exc)}") \
            from None
    return buf.getvalue()


def encode_dicom(path, **encode_options):
    """Compress a DICOM file into .rmc bytes.

    The pixels (all frames) are coded like any array (roimc.encode, with `encode_options`);
    the rest of the file (file meta group and every data element but Pixel Data) goes,
    brotli-compressed, into a `dcmd` ancillary chunk (spec/dicom.md) from which
    decode_dicom rebuilds the file. The sample layout comes from the data set
    (Samples per Pixel, Number of Frames): a channels_last option is refused."""
    import brotli
    from .api import encode
    path = os.fspath(path)
    if encode_options.get("channels_last") is not None:
        raise InputError("the layout of a DICOM image comes from its data set: "
                         "do not choose frames or channels")
    encode_options.pop("channels_last", None)
    ancillary = dict(encode_options.pop("ancillary", None) or {})
    if DCMD in ancillary:
        raise InputError("the dcmd chunk is written by encode_dicom itself")
    arr, ds = read_dicom(path)
    ancillary[DCMD] = brotli.compress(dataset_bytes(ds, path))
    channels_last = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    return encode(arr, channels_last=channels_last, ancillary=ancillary, **encode_options)


# ---------------------------------------------------------------------------------- decode

def _inflate(payload):
    import brotli
    d = brotli.Decompressor()
    try:
        out = d.process(payload, output_buffer_limit=MAX_DATASET_BYTES)
        if not d.is_finished():
            if len(out) >= MAX_DATASET_BYTES:
                raise CorruptDataError(f"dcmd chunk holds more than {MAX_DATASET_BYTES} bytes")
            raise CorruptDataError("dcmd chunk: brotli stream is truncated")
    except brotli.error as exc:
        raise CorruptDataError(f"dcmd chunk cannot be decompressed: {_one_line(exc)}") \
            from None
    return out


def dataset_of(data):
    """The pydicom data set (without Pixel Data) kept in the dcmd chunk of .rmc bytes."""
    from .api import ancillary_chunks
    pydicom = _pydicom()
    chunks = ancillary_chunks(data)
    if DCMD not in chunks:
        raise InputError("file was not encoded from DICOM; decode to .png/.tif/.npy instead")
    stream = _inflate(chunks[DCMD])
    try:
        with _quiet():
            ds = pydicom.dcmread(io.BytesIO(stream))
            ts = _transfer_syntax(ds, "dcmd chunk")
            for _ in ds.iterall():   # parse every element now, so that damage shows here
                pass
    except RmcError as exc:
        raise CorruptDataError(f"dcmd chunk: {exc}") from None
    except Exception as exc:
        raise CorruptDataError(f"dcmd chunk is not a DICOM data set: {_one_line(exc)}") \
            from None
    if _PIXEL_DATA in ds:
        raise CorruptDataError("dcmd chunk holds Pixel Data")
    return ds, ts


def _pixel_bytes(ds, arr, little_endian):
    """The native Pixel Data value for `arr` as the data set describes it."""
    bits = int(ds.BitsAllocated)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    a = arr.reshape(_frames(ds), int(ds.Rows), int(ds.Columns), spp)
    if bits == 1:
        if a.size and int(a.max()) > 1:
            raise CorruptDataError("1-bit data set but decoded samples exceed 1")
        value = np.packbits(a.astype(np.uint8, copy=False).ravel(), bitorder="little")
        value = value.tobytes()
    else:
        if _planar(ds):
            a = a.transpose(0, 3, 1, 2)   # Planar Configuration 1: RRR..GGG..BBB..
        kind = "i" if arr.dtype.kind == "i" else "u"
        dt = np.dtype(f"{'<' if little_endian else '>'}{kind}{bits // 8}")
        value = np.ascontiguousarray(a, dtype=dt).tobytes()
    if len(value) % 2:
        value += b"\x00"
    return value


def _check_consistent(ds, arr):
    """The decoded array must match what the data set says of its pixels."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    except (AttributeError, TypeError, ValueError) as exc:
        raise CorruptDataError(f"dcmd chunk: Image Pixel module incomplete: "
                               f"{_one_line(exc)}") from None
    frames = _frames(ds)
    shape = (rows, cols) + ((spp,) if spp > 1 else ())
    if frames > 1:
        shape = (frames,) + shape
    if tuple(arr.shape) != shape:
        raise CorruptDataError(f"dcmd chunk describes {'x'.join(map(str, shape))} samples, "
                               f"the image holds {'x'.join(map(str, arr.shape))}")
    want = {1: "uint8", 8: "int8" if signed else "uint8",
            16: "int16" if signed else "uint16"}.get(bits)
    if want is None:
        raise CorruptDataError(f"dcmd chunk: Bits Allocated {bits} is not supported")
    if str(arr.dtype) != want:
        raise CorruptDataError(f"dcmd chunk describes {want} samples, the image holds "
                               f"{arr.dtype}")


def build_dataset(data, *, threads=None):
    """(data set with Pixel Data, decoded array) rebuilt from DICOM-sourced .rmc bytes."""
    from pydicom import uid
    from pydicom.pixels import get_decoder
    from .api import decode
    ds, ts = dataset_of(data)
    arr = decode(data, threads=threads)
    _check_consistent(ds, arr)
    out_ts = ts if not ts.is_compressed else uid.ExplicitVRLittleEndian
    if out_ts != ts:
        ds.file_meta.TransferSyntaxUID = out_ts
    little = out_ts != uid.ExplicitVRBigEndian
    try:
        with _quiet():
            ds.PixelData = _pixel_bytes(ds, arr, little)
            ds[_PIXEL_DATA].VR = "OB" if int(ds.BitsAllocated) <= 8 else "OW"
            ds[_PIXEL_DATA].is_undefined_length = False
            # belt and braces: the rebuilt Pixel Data must read back as the decoded samples
            check, _ = get_decoder(out_ts).as_array(ds, raw=True, correct_unused_bits=False)
    except RmcError:
        raise
    except Exception as exc:
        raise CorruptDataError(f"dcmd chunk does not describe the decoded pixels: "
                               f"{_one_line(exc)}") from None
    if check.dtype != arr.dtype or not np.array_equal(check, arr):
        raise CorruptDataError("dcmd chunk does not describe the decoded pixels")
    return ds, arr


def decode_dicom(data, path, *, threads=None):
    """Decode DICOM-sourced .rmc bytes into a DICOM file at `path` (written atomically).

    The file has the source's data elements and, in an uncompressed transfer syntax, its
    pixels: the source's own transfer syntax when that was uncompressed, Explicit VR Little
    Endian when it was compressed (spec/dicom.md lists what changes). Returns the array."""
    from .io import atomic_write
    pydicom = _pydicom()
    ds, arr = build_dataset(data, threads=threads)

    def write(f):
        with _quiet():
            pydicom.dcmwrite(f, ds, enforce_file_format=True)

    try:
        atomic_write(path, write)
    except (RmcError, OSError, MemoryError):
        raise
    except Exception as exc:
        raise UnsupportedError(f"{path}: cannot write DICOM file: {_one_line(exc)}") from None
    return arr
