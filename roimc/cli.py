"""The roimc command line: encode, decode, info."""
import json
import os

import click

from . import __version__
from .cliutil import Command, fail

_TYPES = ".png, .tif/.tiff, .npy or .dcm"


def _refuse_overwrite(path, force):
    if os.path.exists(path) and not force:
        fail(f"{path} exists (use --force to overwrite)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="roimc")
def main():
    """roimc: compress medical images, exact where it matters.

    \b
      roimc encode scan.png scan.rmc      lossless by default
      roimc encode scan.png scan.rmc --mode hybrid      ROI exact, background neural
      roimc decode scan.rmc back.png      bit-exact (lossless modes)
      roimc info scan.rmc [--json]
      roimc batch scans/ out/             a whole folder tree, resumable
    """


@main.command(cls=Command)
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--mode", type=click.Choice(["lossless", "near-lossless", "lossy", "hybrid"]),
              default="lossless", show_default=True,
              help="Coding mode. lossless: decoded samples equal the input bit for bit. "
                   "near-lossless: every sample within --max-error (the ROI within "
                   "--roi-max-error). lossy: the neural autoencoder at --quality. hybrid: "
                   "the ROI exact (or within --roi-max-error), the background from the "
                   "autoencoder. lossy and hybrid write a lossless or near-lossless file "
                   "instead when that is smaller at about the same error (see --neural-only).")
@click.option("--max-error", type=int, default=None, metavar="N",
              help="near-lossless: largest absolute error of any sample outside the ROI "
                   "(0 = lossless).")
@click.option("--roi", default=None, metavar="MASK|RECTS|auto",
              help="Region of interest, a mask image (non-zero = ROI, values 0/1 or 0/255, "
                   "the image's size), rectangles \"x,y,w,h[;x,y,w,h...]\" or auto "
                   "(detected: see roimc roi). near-lossless: coded within --roi-max-error; "
                   "hybrid (default auto): coded exactly; lossy: where the encoder spends "
                   "its bits.")
@click.option("--roi-max-error", type=int, default=None, metavar="M",
              help="near-lossless and hybrid: largest absolute error inside the ROI "
                   "(default 0: exact).")
@click.option("--quality", type=click.IntRange(1, 8), default=None,
              help="lossy and hybrid: 1 (smallest file) to 8 (best image)  [default: 6]")
@click.option("--bg-psnr", type=click.FloatRange(0, 200, min_open=True), default=None,
              metavar="DB",
              help="hybrid, in place of --quality: the background's PSNR in dB (peak = the "
                   "image's largest sample), at least this; the smallest of the network's file "
                   "at the lowest quality reaching it, the near-lossless file with the largest "
                   "background bound reaching it (refined by a grade and a dead zone) and the "
                   "lossless file is written.")
@click.option("--model", default=None, metavar="ID|PATH",
              help="lossy and hybrid: the codec model, a registry id (default roimc-ae-v3) "
                   "or a weight file from roimc train-codec.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="lossy and hybrid: where the network runs.")
@click.option("--neural-only", is_flag=True,
              help="lossy and hybrid: keep the network's file. By default the encoder also "
                   "codes the image losslessly, and near-losslessly with the largest error "
                   "bound whose mean squared error is at most 1.26 times (1 dB above) the "
                   "network's, and writes the smallest file (a lossless or near-lossless "
                   "one needs no model to decode).")
@click.option("--effort", type=click.IntRange(1, 9), default=5, show_default=True,
              help="Encode time traded for size. 1: fastest (Golomb-Rice coder). 2-6: each "
                   "tile gets the fast coder (coder 5, decodes at about JPEG-LS speed) unless "
                   "the context-modelling coder (coder 4, about 15x slower to decode) saves a "
                   "sixteenth; 7-9: coder 4 alone (smallest). 3+: a linear predictor fitted "
                   "per tile; 4+: also tries the palette transform; 7+: also tries colour "
                   "images without the colour transform, fits on more samples.")
@click.option("--coder", type=click.Choice(["auto", "fast", "cm2", "golomb", "huffman", "cm",
                                            "raw"]),
              default=None,
              help="Override the effort's residual coder: auto (coder 4 or 5 per tile, as "
                   "--effort 2-6), fast (coder 5: static rANS), cm2 (coder 4: context "
                   "modelling with range coding), adaptive Golomb-Rice with run mode, static "
                   "Huffman, cm (coder 3, the earlier context model) or raw samples. auto "
                   "and fast are lossless only. Tiles the coder would expand are stored "
                   "raw. near-lossless and the exact layer of hybrid: cm2, cm, golomb or "
                   "raw (default: cm2, golomb at --effort 1).")
@click.option("--tile-size", type=click.IntRange(16, 1 << 20), default=512, show_default=True,
              help="Tile edge in pixels; tiles are coded independently and in parallel.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="Worker threads (default: all cores).")
@click.option("--bits", type=click.IntRange(1, 16), default=None,
              help="Stored bits per sample (default: the fewest that hold the image).")
@click.option("--frames/--channels", "frames", default=None,
              help="Read a 3-D array of shape (N, M, K<=4) as frames or as channels "
                   "(default: channels).")
@click.option("--framing", type=click.Choice(["compact", "chunked"]), default="compact",
              show_default=True,
              help="compact: one CRC-32 for the whole file, about 100 bytes smaller (format "
                   "1.13); chunked: PNG-style chunks with a CRC-32 each, readable by earlier "
                   "versions.")
@click.option("-f", "--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def encode(source, output, mode, max_error, roi, roi_max_error, quality, bg_psnr, model,
           device, neural_only, effort, coder, tile_size, threads, bits, frames, framing,
           force):
    """Compress SOURCE (.png, .tif/.tiff, .npy, .dcm) into OUTPUT (.rmc).

    A DICOM source keeps its whole data set (all but Pixel Data) in the file, so that
    `roimc decode OUTPUT back.dcm` writes the DICOM file again with identical pixels."""
    from .io import atomic_write, read_image
    from .api import encode as encode_array, info as info_of
    if not output.lower().endswith(".rmc"):
        fail(f"{output}: the output of encode must end in .rmc")
    _refuse_overwrite(output, force)
    from .dicom import encode_dicom, is_dicom_path
    options = dict(mode=mode, effort=effort, coder=coder, tile_size=tile_size, threads=threads,
                   bits=bits, framing=framing)
    options.update(_near_options(mode, max_error, roi, roi_max_error))
    options.update(_neural_options(mode, roi, roi_max_error, quality, model, device,
                                   neural_only, bg_psnr))
    if is_dicom_path(source):
        if frames is not None:
            fail("--frames/--channels do not apply to DICOM: its data set gives the layout")
        data = encode_dicom(source, **options)
    else:
        array = read_image(source)
        channels_last = None if frames is None else not frames
        data = encode_array(array, channels_last=channels_last, **options)
    atomic_write(output, lambda f: f.write(data))
    d = info_of(data)
    click.echo(f"{source} -> {output}: {os.path.getsize(source)} -> {len(data)} bytes, "
               f"{d['bpp']:.3f} bits per pixel")
    if mode in ("lossy", "hybrid") and d["mode"] != mode:
        kept = "lossless" if d["mode"] == "lossless" else f"near-lossless, max error " \
            f"{_bound_text(d)}"
        click.echo(f"({kept}: smaller than the network's file at about its error; "
                   f"--neural-only keeps the network's)")


def _bound_text(d):
    """A near-lossless file's background bound: "B", or "B (B + 1 on G/16 of the samples)"
    when graded, B being max_error plus the dead zone and the post-filter's clip."""
    b = d["max_error"] + (d.get("deadzone") or 0) + ((d.get("post_filter") or {}).get("clip")
                                                     or 0)
    g = d.get("grade") or 0
    text = f"{b}" if not g else f"{b} ({b + 1} on {g}/16 of the samples)"
    return text + (", post-filtered" if d.get("post_filter") else "")


def _neural_options(mode, roi, roi_max_error, quality, model, device, neural_only=False,
                    bg_psnr=None):
    """The lossy and hybrid options of roimc.encode."""
    if bg_psnr is not None:
        if mode != "hybrid":
            fail("--bg-psnr needs --mode hybrid")
        if quality is not None or neural_only:
            fail("--bg-psnr chooses the quality: give --bg-psnr or --quality, and not "
                 "--neural-only")
    if mode not in ("lossy", "hybrid"):
        if quality is not None or model is not None or device != "auto" or neural_only:
            fail("--quality, --model, --device and --neural-only need --mode lossy or hybrid")
        return {}
    if mode == "lossy" and roi_max_error is not None:
        fail("--roi-max-error needs --mode near-lossless or hybrid")
    options = dict(quality=quality, model=model, device=device, neural_only=neural_only)
    if bg_psnr is not None:
        options["bg_psnr"] = bg_psnr
    if roi is not None:
        options["roi"] = roi
    if roi_max_error is not None:
        options["roi_max_error"] = roi_max_error
    return options


def _near_options(mode, max_error, roi, roi_max_error):
    """The near-lossless options of roimc.encode, with the command line's own messages."""
    if mode != "near-lossless":
        if max_error is not None:
            fail("--max-error needs --mode near-lossless")
        if mode == "lossless" and (roi is not None or roi_max_error is not None):
            fail("--roi and --roi-max-error need --mode near-lossless, lossy or hybrid")
        return {}
    if max_error is None:
        fail("--mode near-lossless needs --max-error N (0 = lossless)")
    if roi is None and roi_max_error is not None:
        fail("--roi-max-error needs --roi")
    options = dict(max_error=max_error)
    if roi is not None:
        options.update(roi=roi, roi_max_error=roi_max_error or 0)
    return options


@main.command(cls=Command)
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="Worker threads (default: all cores).")
@click.option("--roi-out", type=click.Path(dir_okay=False), default=None, metavar="MASK.png",
              help="Also write the file's ROI mask (255 = ROI) as a PNG.")
@click.option("--model", default=None, metavar="PATH",
              help="lossy and hybrid: the weight file of the decoder the file names, when it "
                   "is not installed (its SHA-256 must match).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="lossy and hybrid: where the network runs.")
@click.option("-f", "--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def decode(source, output, threads, roi_out, model, device, force):
    """Decompress SOURCE (.rmc) into OUTPUT (.png, .tif/.tiff, .npy or .dcm, by extension).

    .dcm needs a file encoded from DICOM; .png holds one frame (use .tif or .npy for
    stacks)."""
    from .api import decode as decode_bytes, info as info_of
    from .dicom import DICOM_EXTENSIONS, decode_dicom
    from .io import IMAGE_EXTENSIONS, write_image
    ext = os.path.splitext(output)[1].lower()
    if ext not in IMAGE_EXTENSIONS + tuple(DICOM_EXTENSIONS) or ext == ".rmc":
        fail(f"{output}: choose an output ending in {_TYPES}")
    _refuse_overwrite(output, force)
    if roi_out is not None:
        _check_roi_out(roi_out, output, force)
    with open(source, "rb") as f:
        data = f.read()
    mask = None
    if roi_out is not None:
        from .api import read_mask
        mask = read_mask(data)
        if mask is None:
            fail(f"{source} has no ROI mask (--roi-out)")
    if ext in DICOM_EXTENSIONS:
        array = decode_dicom(data, output, threads=threads)
        click.echo(f"{source} -> {output}: {'x'.join(map(str, array.shape))} {array.dtype}, DICOM")
        _write_roi_out(roi_out, mask)
        return
    if ext == ".png" and info_of(data)["frames_axis"]:
        fail(f"{source} holds a stack of frames: PNG cannot hold it (use .tif or .npy)")
    array = decode_bytes(data, threads=threads, model=model, device=device)
    write_image(output, array)
    click.echo(f"{source} -> {output}: {'x'.join(map(str, array.shape))} {array.dtype}")
    _write_roi_out(roi_out, mask)


def _check_roi_out(roi_out, output, force):
    """Refuse a --roi-out path before anything is decoded."""
    if not roi_out.lower().endswith(".png"):
        fail(f"{roi_out}: --roi-out writes a .png mask")
    if os.path.abspath(roi_out) == os.path.abspath(output):
        fail("--roi-out must differ from OUTPUT")
    _refuse_overwrite(roi_out, force)


def _write_roi_out(roi_out, mask):
    if roi_out is None:
        return
    import numpy as np
    from .io import write_image
    write_image(roi_out, np.where(mask, 255, 0).astype(np.uint8))
    click.echo(f"ROI mask -> {roi_out}: {int(mask.sum())} of {mask.size} pixels")


@main.command(cls=Command)
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(source, as_json):
    """Describe an .rmc file: shape, bits, mode, version, chunks and their sizes."""
    from .api import info as info_of
    with open(source, "rb") as f:
        data = f.read()
    d = info_of(data)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"{source}: roimc format {d['version']}, {d['mode']}, {d['framing']} framing")
    click.echo(f"  shape     {' x '.join(map(str, d['shape']))} {d['dtype']}, {d['bits']} stored bits"
               + (f", offset {d['offset']}" if d["offset"] else ""))
    click.echo(f"  frames    {d['frames']}   channels {d['channels']}   transform {d['transform']}")
    click.echo(f"  tiles     {d['tiles']} of {d['tile'][0]} x {d['tile'][1]}")
    click.echo(f"  size      {d['bytes']} bytes, {d['bpp']:.3f} bits per pixel")
    if d["mode"] in ("lossy", "hybrid"):
        click.echo(f"  decoder   {d['model']} (SHA-256 {d['model_sha256'][:16]}...), "
                   f"quality {d['quality']}")
    if d["mode"] == "hybrid":
        roi = d["roi"]
        click.echo(f"  bounds    ROI within {d['roi_max_error']}, background from the network")
        click.echo(f"  roi       {roi['pixels']} of {d['width'] * d['height']} pixels "
                   f"({100 * roi['fraction']:.1f}%)")
    if d["mode"] == "near-lossless":
        roi = d["roi"]
        if roi is None:
            click.echo(f"  bounds    every sample within {_bound_text(d)} (no ROI)")
        else:
            click.echo(f"  bounds    ROI within {d['roi_max_error']}, elsewhere within "
                       f"{_bound_text(d)}")
            click.echo(f"  roi       {roi['pixels']} of {d['width'] * d['height']} pixels "
                       f"({100 * roi['fraction']:.1f}%)")
    click.echo("  chunks")
    for name, c in d["chunks"].items():
        click.echo(f"    {name}  {c['count']:>6} x, {c['bytes']:>10} bytes")


from .batch import batch as _batch  # noqa: E402  (batch does not import cli)

main.add_command(_batch)

from .report import compare_command  # noqa: E402

main.add_command(compare_command)

from .cli_roi import roi_command, train_roi_command  # noqa: E402

main.add_command(roi_command)
main.add_command(train_roi_command)

from .cli_codec import train_codec_command  # noqa: E402

main.add_command(train_codec_command)

if __name__ == "__main__":
    main()
