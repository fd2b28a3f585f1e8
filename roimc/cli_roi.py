"""`roimc roi` (automatic ROI mask) and `roimc train-roi` (train the ROI U-Net)."""
import os
import time

import click

from .cliutil import Command, fail


def _refuse_overwrite(path, force):
    if os.path.exists(path) and not force:
        fail(f"{path} exists (use --force to overwrite)")


def overlay_image(array, mask):
    """RGB uint8 picture of the image with the ROI outlined in green and the outside dimmed."""
    import numpy as np
    from scipy import ndimage as ndi
    from .roi import prep
    gray = prep.frames_of(array).max(axis=0)
    g = prep.normalise(gray)
    g = np.zeros(gray.shape, np.float32) if g is None else g
    rgb = np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=-1)
    m = mask.astype(bool)
    rgb[~m] //= 2
    width = max(1, max(m.shape) // 256)
    edge = m & ~ndi.binary_erosion(m, iterations=width, border_value=1)
    rgb[edge] = (0, 255, 0)
    return rgb


@click.command("roi", cls=Command)
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--method", type=click.Choice(["unet", "classic"]), default="unet",
              show_default=True,
              help="unet: the shipped U-Net (needs torch); classic: thresholds and morphology.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where the U-Net runs (auto: CUDA when present).")
@click.option("--overlay", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the image with the ROI outlined.")
@click.option("-f", "--force", is_flag=True, help="Overwrite OUTPUT (and the overlay).")
def roi_command(source, output, method, device, overlay, force):
    """Detect the region of interest of SOURCE and write it as a mask to OUTPUT
    (.png, .tif/.tiff or .npy; 255 = ROI, 0 = background).

    The ROI is the whole imaged anatomy plus burnt-in text and markers, with holes filled
    and a safety margin: conservative by design. A stack of frames gets one mask."""
    import numpy as np
    from .dicom import is_dicom_path
    from .io import IMAGE_EXTENSIONS, read_image, write_image
    for path in (output, overlay):
        if path is None:
            continue
        ext = os.path.splitext(path)[1].lower()
        if ext not in IMAGE_EXTENSIONS or ext == ".rmc":
            fail(f"{path}: choose an output ending in .png, .tif/.tiff or .npy")
        _refuse_overwrite(path, force)
    if is_dicom_path(source):
        from .dicom import read_dicom
        array = read_dicom(source)[0]
    else:
        array = read_image(source)
    from .roi import detect_roi
    t = time.perf_counter()
    mask = detect_roi(array, method=method, device=device)
    seconds = time.perf_counter() - t
    write_image(output, (mask * 255).astype(np.uint8))
    if overlay is not None:
        write_image(overlay, overlay_image(array, mask))
    click.echo(f"{source} -> {output}: ROI {100 * mask.mean():.1f} % of "
               f"{mask.shape[0]}x{mask.shape[1]}, {method}, {seconds:.2f} s")


@click.command("train-roi", cls=Command)
@click.option("--data", required=True, type=click.Path(file_okay=False, exists=True),
              help="Folder of training images; NAME.roi.png beside NAME.png is its mask.")
@click.option("--out", default="roi_unet.pt", show_default=True, type=click.Path(dir_okay=False),
              help="Weight file to write (a checkpoint OUT.ckpt allows resuming).")
@click.option("--steps", type=click.IntRange(1), default=800, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=2, show_default=True)
@click.option("--labels", type=click.Choice(["graph", "otsu"]), default="graph",
              show_default=True,
              help="Classical labels, united with any NAME.roi.png mask: graph (Otsu and "
                   "morphology united with a Felzenszwalb-Huttenlocher segmentation) or otsu "
                   "(Otsu and morphology).")
def train_roi_command(data, out, steps, batch, lr, seed, threads, labels):
    """Train the ROI U-Net on a folder of images (the default model came from
    `roimc train-roi --data corpus/train --out roimc/roi/weights/roi_unet_v2.pt`)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("train-roi needs PyTorch: pip install 'roimc[neural]'")
    from .roi.train import train
    train(data, out, steps=steps, batch=batch, lr=lr, seed=seed, threads=threads,
          labels=labels, log=lambda m: click.echo(m))
