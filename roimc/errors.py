"""The exception hierarchy. Every error roimc raises on purpose is an RmcError."""


class RmcError(Exception):
    """Base class of roimc's errors."""


class FormatError(RmcError):
    """The data is not an .rmc file, or its structure breaks the format."""


class CorruptDataError(FormatError):
    """The file is damaged: a checksum, a stream or a declared size does not hold."""


class UnsupportedError(RmcError):
    """The input or file uses something this version does not support."""


class InputError(RmcError, ValueError):
    """A parameter or an input image is invalid."""


class LimitError(FormatError):
    """The file declares more than the configured limits allow."""


class MissingModelError(RmcError):
    """A model named by a file or an option is not installed."""
