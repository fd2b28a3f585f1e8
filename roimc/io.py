"""Image files in and out: PNG, TIFF, .npy and .rmc, chosen by extension.
Outputs are written atomically (temporary file in the same folder, then rename)."""
import io
import os
import tempfile

import numpy as np

from .errors import InputError, RmcError, UnsupportedError

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".npy", ".rmc")


def _ext(path):
    return os.path.splitext(str(path))[1].lower()


def atomic_write(path, write_to):
    """Call write_to(file_object) on a temporary file beside `path`, then rename it over
    `path`. On any error the temporary file is removed and `path` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".roimc-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write_to(f)
        os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp creates 0600; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()   # read once: os.umask is process-wide and not thread-safe


def read_image(path):
    """Read a PNG, TIFF or .npy file into an array (see roimc.samples for layouts)."""
    ext = _ext(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    try:
        if ext == ".png":
            return _read_png(path)
        if ext in (".tif", ".tiff"):
            import tifffile
            return tifffile.imread(path)
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
    except RmcError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read image: {exc}") from None
    raise UnsupportedError(f"{path}: unsupported image type {ext or '(none)'} "
                           f"(use .png, .tif, .tiff or .npy)")


def _png_depth(path):
    """(bit depth, colour type) from the PNG header."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n":
        raise InputError(f"{path}: not a PNG file")
    return head[24], head[25]


def _read_png(path):
    from PIL import Image
    depth, colour = _png_depth(path)
    if depth == 16 and colour in (2, 4, 6):
        # Pillow reduces 16-bit colour and gray+alpha PNG to 8 bits: refuse rather than lose
        raise UnsupportedError(f"{path}: 16-bit colour PNG is not supported (convert it to "
                               f"TIFF or .npy)")
    with Image.open(path) as im:
        if im.format != "PNG":
            raise InputError(f"{path}: not a PNG file")
        mode = im.mode
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode == "PA":
            im = im.convert("RGBA")
        a = np.asarray(im)
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if a.dtype.kind in "iu" and a.dtype.itemsize > 1:
        # Pillow reads 16-bit gray as I;16 or I (int32 holding 0..65535)
        if a.min() < 0 or a.max() > 65535:
            raise UnsupportedError(f"{path}: PNG sample range not supported")
        return a.astype(np.uint16)
    return a


def write_image(path, array):
    """Write an array as PNG, TIFF or .npy (by extension), atomically."""
    ext = _ext(path)
    a = np.asarray(array)
    if ext == ".png":
        from PIL import Image
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.ndim == 2 and a.dtype == np.uint16:
            im = Image.fromarray(a, mode=None)
        elif a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (2, 3, 4))):
            im = Image.fromarray(a)
        else:
            raise UnsupportedError(f"PNG cannot hold a {a.dtype} array of shape {a.shape} "
                                   f"(use .tif or .npy)")
        atomic_write(path, lambda f: im.save(f, format="PNG"))
    elif ext in (".tif", ".tiff"):
        import tifffile
        buf = io.BytesIO()   # tifffile wants a named file or a buffer, not a bare descriptor
        rgb = a.ndim >= 3 and a.shape[-1] in (3, 4) and a.dtype in (np.uint8, np.uint16)
        tifffile.imwrite(buf, a, photometric="rgb" if rgb else "minisblack")
        atomic_write(path, lambda f: f.write(buf.getbuffer()))
    elif ext == ".npy":
        atomic_write(path, lambda f: np.save(f, a, allow_pickle=False))
    else:
        raise UnsupportedError(f"{path}: unsupported output type {ext or '(none)'} "
                               f"(use .png, .tif, .tiff or .npy)")


def read(path, **options):
    """Read an .rmc file (decoded) or an image file into an array."""
    if _ext(path) == ".rmc":
        from .api import decode
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror}") from None
        return decode(data, **options)
    return read_image(path)


def write(path, array, **options):
    """Write an array: .rmc files are encoded with `options` (see roimc.encode)."""
    if _ext(path) == ".rmc":
        from .api import encode
        data = encode(array, **options)
        atomic_write(path, lambda f: f.write(data))
    else:
        write_image(path, array)
