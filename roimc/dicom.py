"""DICOM in and out: code a DICOM file's pixels into .rmc, keep the rest of the file in a
`dcmd` ancillary chunk, and rebuild a DICOM file from such an .rmc (spec/dicom.md).

    data = encode_dicom("ct.dcm")      # .rmc bytes: the pixels, plus the data set
    decode_dicom(data, "back.dcm")      # the same data elements, identical pixels

Needs pydicom 3. Compressed transfer syntaxes are decoded through pydicom's pixel
handlers, which may need a plugin (pylibjpeg-libjpeg, pylibjpeg-openjpeg, ...).

Which samples go into the .rmc:
  * uncompressed sources (Implicit/Explicit VR Little Endian, Explicit VR Big Endian,
    Deflated): the samples exactly as stored, through pydicom's native decoder with no
    processing: no colour conversion, unused high bits kept as they are, 1-bit data
    unpacked to 0/1, YBR_FULL_422 subsampling expanded (Photometric Interpretation becomes
    YBR_FULL). The rebuilt file is in the source's transfer syntax.
  * compressed sources (JPEG, JPEG-LS, JPEG 2000, RLE): what `ds.pixel_array` returns
    (pydicom's defaults: YCbCr converted to RGB where pydicom does so); the Image Pixel
    module is updated to describe those samples, and the rebuilt file is Explicit VR Little
    Endian.
Either way `pydicom.dcmread(rebuilt).pixel_array` equals the source's `pixel_array`.
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
MAX_DATASET_BYTES = 1 << 30   # decompressed size limit of a dcmd chunk

_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)   # Float / Double Float Pixel Data
# Elements that only describe encapsulated Pixel Data; they go with it: Extended Offset
# Table, Extended Offset Table Lengths, Encapsulated Pixel Data Value Total Length.
_ENCAPSULATION_TAGS = (0x7FE00001, 0x7FE00002, 0x7FE00003)

# Packages that give pydicom a decoder, by transfer syntax UID.
_LIBJPEG = "pylibjpeg and pylibjpeg-libjpeg (pip install pylibjpeg pylibjpeg-libjpeg)"
_OPENJPEG = "pylibjpeg and pylibjpeg-openjpeg (pip install pylibjpeg pylibjpeg-openjpeg)"
_PLUGINS = {
    "1.2.840.10008.1.2.4.50": _LIBJPEG,                    # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51": _LIBJPEG,                    # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57": _LIBJPEG,                    # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70": _LIBJPEG,                    # JPEG Lossless, SV1
    "1.2.840.10008.1.2.4.80": _LIBJPEG + " or pyjpegls",   # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": _LIBJPEG + " or pyjpegls",   # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": _OPENJPEG,                   # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91": _OPENJPEG,                   # JPEG 2000
    "1.2.840.10008.1.2.4.201": _OPENJPEG,                  # HTJ2K Lossless Only
    "1.2.840.10008.1.2.4.202": _OPENJPEG,                  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": _OPENJPEG,                  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg and pylibjpeg-rle",  # RLE Lossless (pydicom has one)
}


# ---------------------------------------------------------------------------------- helpers

def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise UnsupportedError("DICOM support needs pydicom 3: pip install 'pydicom>=3'") \
            from None
    if int(pydicom.__version__.split(".")[0]) < 3:
        raise UnsupportedError(f"DICOM support needs pydicom 3, found {pydicom.__version__}: "
                               f"pip install 'pydicom>=3'")
    return pydicom


@contextlib.contextmanager
def _quiet():
    """pydicom reports oddities of its input as warnings; the CLI shows one-line errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _one_line(exc):
    text = " ".join(str(exc).split()).split(" Traceback (most recent call last)")[0]
    return text or type(exc).__name__


def is_dicom_path(path):
    """True for a name ending in .dcm or .dicom; for any other name that is not one of the
    image types roimc reads (.png, .tif, .tiff, .npy, .rmc), True when the file's bytes 128
    to 131 are b"DICM" (DICOM files are often named by UID, e.g. 1.2.840.1234.1)."""
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


def _int(ds, keyword, default=None):
    try:
        value = ds.get(keyword, default)
        return default if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return default


def _samples_per_pixel(ds):
    return _int(ds, "SamplesPerPixel", 1) or 1


def _frames(ds):
    return max(1, _int(ds, "NumberOfFrames", 1) or 1)


def _ts_label(ts):
    name = ts.name if ts.is_transfer_syntax else "unknown transfer syntax"
    return f"'{name}' ({ts})"


def _transfer_syntax(ds, where):
    from pydicom.uid import UID
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if not ts:
        raise InputError(f"{where}: the file meta group has no Transfer Syntax UID")
    return UID(str(ts))


def _expected_dtype(ds):
    bits = _int(ds, "BitsAllocated")
    signed = _int(ds, "PixelRepresentation", 0) == 1
    return {1: "uint8", 8: "int8" if signed else "uint8",
            16: "int16" if signed else "uint16"}.get(bits)


def _expected_shape(ds):
    spp = _samples_per_pixel(ds)
    shape = (_int(ds, "Rows"), _int(ds, "Columns")) + ((spp,) if spp > 1 else ())
    frames = _frames(ds)
    return ((frames,) if frames > 1 else ()) + shape


# ---------------------------------------------------------------------------------- reading

def _read_dataset(path):
    """A pydicom data set from `path`: a Part-10 file; one without the preamble and 'DICM';
    or a bare data set (no file meta group; it must start with a group 0x0008 element),
    which is given a file meta group: Transfer Syntax UID from its encoding, Media Storage
    SOP Class/Instance UID from its SOP Class/Instance UID."""
    pydicom = _pydicom()
    from pydicom import uid
    from pydicom.dataset import FileMetaDataset
    from pydicom.errors import InvalidDicomError

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
        if head not in (b"\x02\x00", b"\x08\x00", b"\x00\x08"):
            raise InputError(f"{path}: not a DICOM file (no 'DICM' marker at byte 128)")
        ds = pydicom.dcmread(path, force=True)
    except RmcError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or _one_line(exc)}") from None
    except Exception as exc:
        raise InputError(f"{path}: cannot read DICOM file: {_one_line(exc)}") from None
    if "SOPClassUID" not in ds and _PIXEL_DATA not in ds:
        raise InputError(f"{path}: not a DICOM file (no 'DICM' marker at byte 128)")
    if getattr(ds, "file_meta", None) is not None and "TransferSyntaxUID" in ds.file_meta:
        return ds   # a file meta group without the preamble and 'DICM'
    implicit, little = ds.original_encoding
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = (uid.ImplicitVRLittleEndian if implicit else
                              uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian)
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    return ds


def _check_pixel_module(ds, path):
    if any(tag in ds for tag in _FLOAT_PIXEL_DATA):
        raise UnsupportedError(f"{path}: float pixel data is not supported (integer Pixel "
                               f"Data of 1, 8 or 16 bits only)")
    if _PIXEL_DATA not in ds:
        raise InputError(f"{path}: DICOM file has no Pixel Data (7FE0,0010) to encode")
    missing = [k for k in ("Rows", "Columns", "BitsAllocated") if _int(ds, k) is None]
    if missing:
        raise InputError(f"{path}: DICOM file lacks {', '.join(missing)}, needed to read its "
                         f"Pixel Data")
    bits = _int(ds, "BitsAllocated")
    if bits not in (1, 8, 16):
        raise UnsupportedError(f"{path}: Bits Allocated {bits} is not supported (roimc codes "
                               f"1-, 8- and 16-bit samples)")


def _decode_pixels(ds, ts, path):
    """(array, image pixel properties) of the Pixel Data of `ds`, through pydicom (see the
    module's docstring for what is returned)."""
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
            arr, props = decoder.as_array(ds)   # what ds.pixel_array gives
        else:
            arr, props = decoder.as_array(ds, raw=True, correct_unused_bits=False)
    except (RmcError, MemoryError):
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot decode {_ts_label(ts)} pixel data: "
                         f"{_one_line(exc)}") from None
    if arr.dtype.byteorder not in ("=", "|"):   # big-endian source: same values, native order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr, props


def _describe(ds, ts, arr, props):
    """Make the Image Pixel module of `ds` describe `arr`, the samples the .rmc will hold."""
    pi = props.get("photometric_interpretation")
    if not ts.is_compressed and str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
        pi = "YBR_FULL"   # pydicom expanded the subsampling
    if pi and str(ds.get("PhotometricInterpretation", "")) != pi:
        ds.PhotometricInterpretation = pi
    for key, keyword in (("bits_allocated", "BitsAllocated"), ("bits_stored", "BitsStored"),
                         ("pixel_representation", "PixelRepresentation"),
                         ("samples_per_pixel", "SamplesPerPixel")):
        value = props.get(key)
        if value is not None and keyword in ds and _int(ds, keyword) != int(value):
            setattr(ds, keyword, int(value))
            if keyword == "BitsStored" and "HighBit" in ds:
                ds.HighBit = int(value) - 1
    frames = arr.shape[0] if arr.ndim == (4 if _samples_per_pixel(ds) > 1 else 3) else 1
    if frames != _frames(ds):
        ds.NumberOfFrames = frames


def read_dicom(path):
    """(samples, data set) of a DICOM file: the samples the .rmc holds, and the data set
    without Pixel Data whose Image Pixel module describes them (see encode_dicom)."""
    _pydicom()
    path = os.fspath(path)
    with _quiet():
        ds = _read_dataset(path)
        ts = _transfer_syntax(ds, path)
        _check_pixel_module(ds, path)
        arr, props = _decode_pixels(ds, ts, path)
        if arr.dtype not in (np.uint8, np.uint16, np.int8, np.int16):
            raise UnsupportedError(f"{path}: {arr.dtype} pixel samples are not supported "
                                   f"(8- and 16-bit integers only)")
        del ds[_PIXEL_DATA]
        for tag in _ENCAPSULATION_TAGS:
            if tag in ds:
                del ds[tag]
        _describe(ds, ts, arr, props)
    return arr, ds


def dataset_bytes(ds, where="data set"):
    """The DICOM Part-10 byte stream of `ds` (written in its own transfer syntax)."""
    pydicom = _pydicom()
    try:
        with _quiet():
            try:
                buf = io.BytesIO()
                pydicom.dcmwrite(buf, ds, enforce_file_format=True)
            except Exception:
                # Elements pydicom kept raw cannot always be written back as they were read
                # (a body in implicit VR under an explicit VR transfer syntax, say): type
                # every element (VRs from the data dictionary) and write again.
                for _ in ds.iterall():
                    pass
                buf = io.BytesIO()
                pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    except Exception as exc:
        raise InputError(f"{where}: cannot serialise the DICOM data set: "
                         f"{_one_line(exc)}") from None
    return buf.getvalue()


# ---------------------------------------------------------------------------------- rebuild

def _pixel_bytes(ds, arr, little_endian):
    """The native Pixel Data value of `arr`, laid out as the data set says."""
    bits = _int(ds, "BitsAllocated")
    spp = _samples_per_pixel(ds)
    a = arr.reshape(_frames(ds), _int(ds, "Rows"), _int(ds, "Columns"), spp)
    if bits == 1:
        if a.size and int(a.max()) > 1:
            raise CorruptDataError("dcmd chunk describes 1-bit samples, the image holds "
                                   "larger values")
        value = np.packbits(a.astype(np.uint8, copy=False).ravel(), bitorder="little")
        value = value.tobytes()
    else:
        if spp > 1 and _int(ds, "PlanarConfiguration", 0) == 1:
            a = a.transpose(0, 3, 1, 2)   # colour-by-plane: all R, then all G, then all B
        dtype = np.dtype(arr.dtype).newbyteorder("<" if little_endian else ">")
        value = np.ascontiguousarray(a, dtype=dtype).tobytes()
    if len(value) % 2:
        value += b"\x00"
    return value


def _attach_pixels(ds, ts, arr):
    """Give `ds` (from a dcmd chunk, source transfer syntax `ts`) Pixel Data holding `arr`,
    in an uncompressed transfer syntax; check that it reads back as `arr`."""
    from pydicom import uid
    from pydicom.pixels import get_decoder
    want_shape, want_dtype = _expected_shape(ds), _expected_dtype(ds)
    if None in want_shape or want_dtype is None:
        raise CorruptDataError("dcmd chunk: the Image Pixel module is incomplete or "
                               "describes samples roimc does not code")
    if tuple(arr.shape) != want_shape:
        raise CorruptDataError(f"dcmd chunk describes {'x'.join(map(str, want_shape))} "
                               f"samples, the image holds {'x'.join(map(str, arr.shape))}")
    if str(arr.dtype) != want_dtype:
        raise CorruptDataError(f"dcmd chunk describes {want_dtype} samples, the image holds "
                               f"{arr.dtype}")
    out_ts = uid.ExplicitVRLittleEndian if ts.is_compressed else ts
    ds.file_meta.TransferSyntaxUID = out_ts
    try:
        with _quiet():
            ds.PixelData = _pixel_bytes(ds, arr, out_ts != uid.ExplicitVRBigEndian)
            ds[_PIXEL_DATA].VR = "OB" if _int(ds, "BitsAllocated") <= 8 else "OW"
            ds[_PIXEL_DATA].is_undefined_length = False
            check, _ = get_decoder(out_ts).as_array(ds, raw=True, correct_unused_bits=False)
    except (RmcError, MemoryError):
        raise
    except Exception as exc:
        raise CorruptDataError(f"dcmd chunk does not describe the decoded pixels: "
                               f"{_one_line(exc)}") from None
    if check.dtype.newbyteorder("=") != arr.dtype or not np.array_equal(check, arr):
        raise CorruptDataError("dcmd chunk does not describe the decoded pixels")
    return ds


def _inflate(payload):
    import brotli
    d = brotli.Decompressor()
    try:
        out = d.process(payload, output_buffer_limit=MAX_DATASET_BYTES)
        finished = d.is_finished()
    except brotli.error as exc:
        raise CorruptDataError(f"dcmd chunk cannot be decompressed: {_one_line(exc)}") \
            from None
    if not finished:
        if len(out) >= MAX_DATASET_BYTES:
            raise CorruptDataError(f"dcmd chunk holds more than {MAX_DATASET_BYTES} bytes")
        raise CorruptDataError("dcmd chunk cannot be decompressed: brotli stream truncated")
    return out


def _parse_stream(stream):
    """(data set, source transfer syntax) of a dcmd chunk's Part-10 stream."""
    pydicom = _pydicom()
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


# ---------------------------------------------------------------------------------- API

def encode_dicom(path, **encode_options):
    """Compress a DICOM file into .rmc bytes.

    The pixels (all frames) are coded like any array (roimc.encode with `encode_options`:
    mode, coder, tile_size, threads, bits, metadata, ancillary); the rest of the file (file
    meta group and every data element but Pixel Data) goes, brotli-compressed, into a
    `dcmd` ancillary chunk (spec/dicom.md) from which decode_dicom rebuilds the file. The
    layout of the array comes from Samples per Pixel and Number of Frames, so a
    channels_last option is refused."""
    import brotli
    from .api import encode
    path = os.fspath(path)
    if encode_options.pop("channels_last", None) is not None:
        raise InputError("the layout of a DICOM image comes from its data set: "
                         "do not choose frames or channels")
    ancillary = dict(encode_options.pop("ancillary", None) or {})
    if DCMD in ancillary:
        raise InputError("the dcmd chunk is written by encode_dicom itself")
    arr, ds = read_dicom(path)
    stream = dataset_bytes(ds, path)
    # Rebuild now what decode_dicom will rebuild, so that a file that could not be decoded
    # is refused here, while its source is still at hand.
    try:
        _attach_pixels(*_parse_stream(stream), arr)
    except CorruptDataError as exc:
        raise UnsupportedError(f"{path}: cannot keep this DICOM file: {exc}") from None
    ancillary[DCMD] = brotli.compress(stream)
    return encode(arr, channels_last=_samples_per_pixel(ds) > 1, ancillary=ancillary,
                  **encode_options)


def dataset_of(data):
    """The pydicom data set (Pixel Data left out) kept in the dcmd chunk of .rmc bytes."""
    from .api import ancillary_chunks
    chunks = ancillary_chunks(data)
    if DCMD not in chunks:
        raise InputError("file was not encoded from DICOM; decode to .png/.tif/.npy instead")
    return _parse_stream(_inflate(chunks[DCMD]))[0]


def build_dataset(data, *, threads=None):
    """(data set with Pixel Data, decoded array) rebuilt from DICOM-sourced .rmc bytes."""
    from .api import ancillary_chunks, decode
    chunks = ancillary_chunks(data)
    if DCMD not in chunks:
        raise InputError("file was not encoded from DICOM; decode to .png/.tif/.npy instead")
    ds, ts = _parse_stream(_inflate(chunks[DCMD]))
    arr = decode(data, threads=threads)
    return _attach_pixels(ds, ts, arr), arr


def decode_dicom(data, path, *, threads=None):
    """Decode DICOM-sourced .rmc bytes into a DICOM file at `path`, written atomically.

    The file has the source's data elements and its pixels, uncompressed: in the source's
    transfer syntax when that was uncompressed, in Explicit VR Little Endian when it was
    compressed (spec/dicom.md lists what changes). Returns the decoded array."""
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
