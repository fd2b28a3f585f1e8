"""`roimc train-codec`: train the lossy codec's autoencoder on a folder of images."""
import click

from .cliutil import Command, fail


@click.command("train-codec", cls=Command)
@click.option("--data", required=True, type=click.Path(file_okay=False, exists=True),
              help="Folder of training images; NAME.roi.png beside NAME.png is its ROI.")
@click.option("--out", default="roimc_codec.pt", show_default=True,
              type=click.Path(dir_okay=False),
              help="Weight file to write (a checkpoint OUT.ckpt allows resuming).")
@click.option("--steps", type=click.IntRange(1), default=5000, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True)
@click.option("--size", type=click.IntRange(16), default=128, show_default=True,
              help="Crop edge in pixels (a multiple of 8).")
@click.option("--lr", type=float, default=5e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=2, show_default=True)
@click.option("--channels", type=click.IntRange(8, 512), default=64, show_default=True,
              help="Feature channels of the autoencoder.")
@click.option("--latent", type=click.IntRange(1, 64), default=64, show_default=True,
              help="Latent channels at 1/8 of the image in each dimension (the lowest "
                   "frequencies of the 8x8 DCT the analysis starts from).")
@click.option("--detail", type=click.IntRange(1, 256), default=48, show_default=True,
              help="Channels of the full-scale refinement of the synthesis.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to train.")
@click.option("--learn-analysis", is_flag=True,
              help="Train the analysis (the encoder) and the quality gains too; by default "
                   "they keep their DCT start and only the synthesis is trained.")
def train_codec_command(data, out, steps, batch, size, lr, seed, threads, channels, latent,
                        detail, device, learn_analysis):
    """Train the lossy codec's autoencoder (8 qualities) on a folder of images. A run that
    finds OUT.ckpt resumes from it, so a longer --steps continues a finished run. The shipped
    model came from `roimc train-codec --data corpus/train --out
    roimc/neural/weights/roimc_ae_v3.pt` and then the same with `--steps 7000`, 12000,
    16000, 20000 and 24000; encode with your own using --model OUT."""
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("train-codec needs PyTorch: pip install 'roimc[neural]'")
    if size % 8:
        fail("--size must be a multiple of 8")
    from .neural.train import train
    train(data, out, steps=steps, batch=batch, size=size, lr=lr, seed=seed, threads=threads,
          config={"channels": channels, "latent": latent, "qualities": 8, "detail": detail},
          device=device,
          learn_analysis=learn_analysis, log=lambda m: click.echo(m))
