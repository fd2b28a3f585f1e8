"""roimc: a compression codec for medical images.

    data = roimc.encode(array)          # lossless .rmc bytes
    array = roimc.decode(data)          # the same array, bit for bit
    roimc.encode(array, mode="near-lossless", max_error=2, roi=mask)   # ROI exact, rest +-2
    roimc.write("scan.rmc", array); roimc.read("scan.rmc")
"""
from .api import decode, encode, info, read_mask
from .errors import (CorruptDataError, FormatError, InputError, LimitError, MissingModelError,
                     RmcError, UnsupportedError)
from .io import read, write
from . import pillow_plugin  # noqa: F401,E402  (registers .rmc with Pillow)

__version__ = "0.1.0"

__all__ = ["encode", "decode", "info", "read_mask", "read", "write", "RmcError", "FormatError",
           "CorruptDataError", "UnsupportedError", "InputError", "LimitError",
           "MissingModelError", "__version__"]
