"""A visual comparison of an image with its .rmc file, as one PNG (Pillow only).

    roimc compare scan.png scan.rmc --out report.png [--roi scan.roi.png]

    from roimc.report import compare, metrics
    result = compare("scan.png", "scan.rmc", "report.png", roi_mask_path="scan.roi.png")
    metrics(original, decoded, mask)      # the figures alone, on arrays

Layout (see layout_size): three panels side by side, each under a one-line title: the
original, the decoded image, and the absolute error as a heat map (black = 0, bright yellow =
the maximum error) with a colour scale bar beneath it; then five text lines: the original,
the file (bytes and bits per pixel), PSNR (whole image, ROI, background), and the maximum
absolute error. With a mask the ROI outline is drawn in green on the original and decoded
panels.

* Display: uint8 samples are shown as they are, other sample types (16-bit, signed) are
  windowed to 8 bits over the original's min..max. Colour images are shown as RGB (an alpha
  channel is not shown; gray + alpha is shown as gray). A multi-frame image shows its first
  frame; the figures cover all frames.
* Panels are shown at a whole-number scale: images larger than 512 pixels are reduced by
  the smallest integer factor that fits 512 (the heat map keeps each block's maximum error,
  so that isolated errors stay visible), images of at most 128 pixels are enlarged (nearest
  neighbour) to at least 256 pixels.
* PSNR = 10 log10(peak^2 / MSE) with peak = the original's maximum value (at least 1), over
  all samples of the region; identical samples give inf, printed "exact". A mask is a
  PNG of the image's height and width, non-zero (255) = ROI.
* bpp = file bytes * 8 / (width * height * frames).
"""
import math
import os

import click
import numpy as np

from .cliutil import Command, fail
from .errors import InputError, RmcError

MAX_PANEL = 512        # larger images are reduced to fit this
SMALL_PANEL = 128      # images up to this size are enlarged ...
MIN_PANEL = 256        # ... to at least this
MARGIN = 12
TITLE_H = 20           # title line above each panel
MIN_CELL_W = 200       # a panel's column is at least this wide (titles, labels)
BAR_GAP, BAR_H = 6, 12  # colour scale bar under the heat map
LINE_H = 18            # one text line
TEXT_LINES = 5
FONT_SIZE = 13
OUTLINE = (0, 255, 0)  # ROI outline colour

# heat map: black -> purple -> red -> orange -> light yellow
_CMAP_POS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_CMAP_RGB = np.array([[0, 0, 0], [90, 10, 140], [210, 40, 60], [250, 150, 10],
                      [255, 255, 190]], dtype=np.float64)


# ----------------------------------------------------------------------------- figures

def _psnr(sq_err, peak):
    if sq_err.size == 0:
        return None
    mse = float(sq_err.mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _expand_mask(mask, shape):
    """A boolean mask of `shape` from a mask of the same shape or of its (H, W) axes: the
    first two axes, or axes 1 and 2 for a frames-first layout (F, H, W[, C])."""
    m = np.asarray(mask) != 0
    if m.shape == tuple(shape):
        return m
    if m.ndim == 2 and len(shape) >= 2:
        if tuple(shape[:2]) == m.shape:
            return np.broadcast_to(m.reshape(m.shape + (1,) * (len(shape) - 2)), shape)
        if len(shape) >= 3 and tuple(shape[1:3]) == m.shape:
            return np.broadcast_to(m.reshape((1,) + m.shape + (1,) * (len(shape) - 3)), shape)
    raise InputError(f"the mask ({'x'.join(map(str, m.shape))}) does not match the image "
                     f"({'x'.join(map(str, shape))})")


def metrics(original, decoded, mask=None):
    """Compare two arrays of the same shape. Returns a dict:

    peak (the original's maximum, at least 1), psnr (dB; inf when identical), max_error
    (largest absolute difference), exact (bool), and with a mask (same shape as the image,
    or its (H, W); non-zero = ROI): roi_pixels, psnr_roi, max_error_roi,
    psnr_background, max_error_background (None for an empty region)."""
    a = np.asarray(original)
    b = np.asarray(decoded)
    if a.shape != b.shape:
        raise InputError(f"the original is {'x'.join(map(str, a.shape))} but the file decodes "
                         f"to {'x'.join(map(str, b.shape))}")
    if a.size == 0:
        raise InputError("empty image")
    a64 = a.astype(np.int64) if a.dtype.kind in "biu" else a.astype(np.float64)
    b64 = b.astype(np.int64) if b.dtype.kind in "biu" else b.astype(np.float64)
    err = np.abs(a64 - b64)
    sq = err.astype(np.float64) ** 2
    peak = max(float(a64.max()), 1.0)

    def _max(e):
        return None if e.size == 0 else _num(e.max())

    result = {"peak": _num(peak), "psnr": _psnr(sq, peak), "max_error": _max(err)}
    result["exact"] = result["max_error"] == 0
    if mask is not None:
        m = _expand_mask(mask, a.shape)
        result.update(roi_pixels=int(np.count_nonzero(m)),
                      psnr_roi=_psnr(sq[m], peak), max_error_roi=_max(err[m]),
                      psnr_background=_psnr(sq[~m], peak), max_error_background=_max(err[~m]))
    return result


def _num(x):
    x = float(x)
    return int(x) if x.is_integer() else x


def format_psnr(value):
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "exact"
    return f"{value:.2f} dB"


# ----------------------------------------------------------------------------- layout

def panel_scale(height, width):
    """(up, down): the integer factors a height x width image is enlarged / reduced by."""
    side = max(height, width)
    if side > MAX_PANEL:
        return 1, -(-side // MAX_PANEL)
    if side <= SMALL_PANEL:
        return -(-MIN_PANEL // side), 1
    return 1, 1


def panel_size(height, width):
    """(width, height) of each panel in the report."""
    up, down = panel_scale(height, width)
    return -(-width * up // down), -(-height * up // down)


def layout_size(height, width):
    """(width, height) in pixels of the report of a height x width image."""
    pw, ph = panel_size(height, width)
    cell = max(pw, MIN_CELL_W)
    return (MARGIN + 3 * (cell + MARGIN),
            MARGIN + TITLE_H + ph + BAR_GAP + BAR_H + LINE_H + TEXT_LINES * LINE_H + MARGIN)


def colormap(values):
    """Map values in [0, 1] to uint8 RGB (black -> purple -> red -> orange -> yellow)."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    rgb = np.stack([np.interp(v, _CMAP_POS, _CMAP_RGB[:, k]) for k in range(3)], axis=-1)
    return np.rint(rgb).astype(np.uint8)


def _resize(a, up, down, reduce):
    """Scale a (H, W[, 3]) array by whole factors: repeat, or block `reduce` (mean / max)."""
    if up > 1:
        return a.repeat(up, axis=0).repeat(up, axis=1)
    if down == 1:
        return a
    h, w = a.shape[:2]
    H, W = -(-h // down) * down, -(-w // down) * down
    pad = [(0, H - h), (0, W - w)] + [(0, 0)] * (a.ndim - 2)
    edge = np.pad(a, pad, mode="edge")
    blocks = edge.reshape((H // down, down, W // down, down) + a.shape[2:])
    if reduce == "max":
        return blocks.max(axis=(1, 3))
    return np.rint(blocks.astype(np.float64).mean(axis=(1, 3))).astype(a.dtype)


def _display(frame, lo, hi):
    """(H, W, C) samples -> (H, W, 3) uint8 for display (window lo..hi unless uint8)."""
    if frame.shape[-1] in (1, 2):
        frame = frame[..., :1].repeat(3, axis=-1)
    else:
        frame = frame[..., :3]
    if frame.dtype == np.uint8:
        return frame
    span = max(hi - lo, 1)
    scaled = (frame.astype(np.float64) - lo) * (255.0 / span)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _outline(mask):
    """The ROI pixels that touch a non-ROI pixel or the border (4-neighbourhood)."""
    m = np.pad(mask, 1, mode="constant", constant_values=False)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def _font():
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render(original4, decoded4, mask, figures, lines, title_error):
    """The report image (PIL RGB) from (F, H, W, C) arrays and an optional (H, W) mask."""
    from PIL import Image, ImageDraw
    _, h, w, _ = original4.shape
    up, down = panel_scale(h, w)
    pw, ph = panel_size(h, w)
    cell = max(pw, MIN_CELL_W)
    size = layout_size(h, w)
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font()

    lo, hi = float(original4.min()), float(original4.max())
    shown = [_resize(_display(x[0], lo, hi), up, down, "mean") for x in (original4, decoded4)]
    err = np.abs(original4[0].astype(np.int64) - decoded4[0].astype(np.int64)).max(axis=-1)
    err = _resize(err, up, down, "max")
    top = max(int(figures["max_error"] or 0), 1)
    heat = colormap(err / top)
    if mask is not None:
        edge = _outline(_resize(mask, up, down, "max"))
        for panel in shown:
            panel[edge] = OUTLINE
    panels = shown + [heat]
    titles = ["original", "decoded", title_error]
    y_panel = MARGIN + TITLE_H
    for k, (panel, title) in enumerate(zip(panels, titles)):
        x = MARGIN + k * (cell + MARGIN)
        draw.text((x, MARGIN), title, fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(np.ascontiguousarray(panel[:ph, :pw]), "RGB"), (x, y_panel))
    # colour scale bar under the heat map, labelled 0 .. max error
    x_bar = MARGIN + 2 * (cell + MARGIN)
    y_bar = y_panel + ph + BAR_GAP
    bar = colormap(np.linspace(0.0, 1.0, pw))[None].repeat(BAR_H, axis=0)
    if not figures["max_error"]:
        bar[:] = 0
    canvas.paste(Image.fromarray(np.ascontiguousarray(bar), "RGB"), (x_bar, y_bar))
    draw.rectangle([x_bar - 1, y_bar - 1, x_bar + pw, y_bar + BAR_H], outline=(128, 128, 128))
    y_label = y_bar + BAR_H + 2
    draw.text((x_bar, y_label), "0", fill=(0, 0, 0), font=font)
    right = str(figures["max_error"]) if figures["max_error"] else "0 (exact)"
    rw = draw.textlength(right, font=font)
    draw.text((max(x_bar, x_bar + pw - rw), y_label), right, fill=(0, 0, 0), font=font)
    # text lines
    y = y_bar + BAR_H + LINE_H + 4
    for line in lines[:TEXT_LINES]:
        draw.text((MARGIN, y), line, fill=(0, 0, 0), font=font)
        y += LINE_H
    return canvas


# ----------------------------------------------------------------------------- compare

def _read_mask(path, height, width):
    from PIL import Image
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., 0]
    if a.shape != (height, width):
        raise InputError(f"{path}: the mask is {a.shape[1]}x{a.shape[0]} pixels, the image "
                         f"{width}x{height}")
    return a != 0


def _layout(decoded, header):
    """(F, H, W, C) views of an array with the header's layout."""
    return decoded.reshape(header.frames, header.height, header.width, header.channels)


def compare(original_path, rmc_path, out_path, roi_mask_path=None):
    """Write a PNG report comparing the image at original_path with the .rmc file at
    rmc_path (atomically, to out_path). Returns the figures: those of metrics() plus bytes,
    bpp, shape, dtype."""
    from .api import decode
    from .container import Header, parse
    from .io import atomic_write, read_image

    original = np.asarray(read_image(original_path))
    if original.dtype == np.bool_:
        original = original.astype(np.uint8)
    if not os.path.exists(rmc_path):
        raise InputError(f"{rmc_path}: no such file")
    try:
        with open(rmc_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f"{rmc_path}: {exc.strerror}") from None
    try:
        decoded = decode(data)
        header = Header.unpack(parse(data)[0].payload)
    except RmcError as exc:
        raise type(exc)(f"{rmc_path}: {exc}") from None
    if original.shape != decoded.shape:
        raise InputError(f"{original_path} is {'x'.join(map(str, original.shape))} but "
                         f"{rmc_path} decodes to {'x'.join(map(str, decoded.shape))}")
    o4, d4 = _layout(original, header), _layout(decoded, header)
    mask = None
    if roi_mask_path is not None:
        mask = _read_mask(roi_mask_path, header.height, header.width)
    figures = metrics(o4, d4, None if mask is None
                      else np.broadcast_to(mask[None, :, :, None], o4.shape))
    pixels = header.width * header.height * header.frames
    figures.update(bytes=len(data), bpp=8 * len(data) / pixels, shape=list(decoded.shape),
                   dtype=str(decoded.dtype))

    shape = " x ".join(map(str, decoded.shape))
    frames = f", frame 1 of {header.frames} shown" if header.frames > 1 else ""
    lines = [f"original: {os.path.basename(str(original_path))}, {shape} {original.dtype}{frames}",
             f"file: {os.path.basename(str(rmc_path))}, {len(data)} bytes, "
             f"{figures['bpp']:.3f} bits per pixel",
             f"PSNR whole image: {format_psnr(figures['psnr'])} (peak {figures['peak']})"]
    if mask is None:
        lines.append("PSNR ROI / background: no ROI mask given")
    else:
        lines.append(f"PSNR ROI: {format_psnr(figures['psnr_roi'])}, background: "
                     f"{format_psnr(figures['psnr_background'])} (ROI of "
                     f"{int(np.count_nonzero(mask))} px, outlined in green)")
    line = f"max |error|: {figures['max_error']}"
    if mask is not None:
        line += (f" (ROI {_na(figures['max_error_roi'])}, "
                 f"background {_na(figures['max_error_background'])})")
    lines.append(line)
    title = f"|error| (max {figures['max_error']})" if figures["max_error"] else "|error| (exact)"
    image = render(o4, d4, mask, figures, lines, title)
    atomic_write(out_path, lambda f: image.save(f, format="PNG"))
    return figures


def _na(value):
    return "n/a" if value is None else value


# ----------------------------------------------------------------------------- command

@click.command("compare", cls=Command)
@click.argument("original", type=click.Path(dir_okay=False))
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False),
              help="The report to write (.png).")
@click.option("--roi", "roi", type=click.Path(dir_okay=False), default=None,
              help="ROI mask PNG of the image's size (non-zero = ROI): outline and ROI / "
                   "background figures.")
@click.option("-f", "--force", is_flag=True, help="Overwrite the report if it exists.")
def compare_command(original, file, out, roi, force):
    """Compare ORIGINAL (.png, .tif/.tiff, .npy) with FILE (.rmc) in a PNG report: both
    images, an error heat map, bits per pixel, PSNR (whole / ROI / background) and the
    maximum absolute error."""
    if not out.lower().endswith(".png"):
        fail(f"{out}: the report is a PNG: choose an output ending in .png")
    if os.path.exists(out) and not force:
        fail(f"{out} exists (use --force to overwrite)")
    f = compare(original, file, out, roi_mask_path=roi)
    line = f"{out}: {f['bpp']:.3f} bpp, PSNR {format_psnr(f['psnr'])}"
    if roi is not None:
        line += (f" (ROI {format_psnr(f['psnr_roi'])}, background "
                 f"{format_psnr(f['psnr_background'])})")
    click.echo(line + f", max |error| {f['max_error']}")


__all__ = ["compare", "metrics", "layout_size", "panel_size", "colormap", "compare_command"]
