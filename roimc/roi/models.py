"""The registry of shipped ROI models: id -> weight file, SHA-256 and the probability threshold
of its masks (models are data; the default model is roimc.roi.unet.DEFAULT_MODEL).

A model is loaded only when its file's hash matches the registry, so a damaged or swapped
file is an error that names the id, never a silently different mask. `roimc train-roi`
prints the hash of a new weight file. Thresholds: roi-unet-v1 0.3 (low, recall first);
roi-unet-v2 0.5, chosen on corpus/train, where its ROI is smaller than v1's at 0.3 on every
masked image and still covers every mask and the whole anatomy."""
import os

from ..errors import MissingModelError
from ..registry import checked_path

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")

MODELS = {
    "roi-unet-v1": {
        "file": "roi_unet_v1.pt",
        "sha256": "8d6c2b820204d006c9b42fce73a1a7fdb79727f74e06e47048b1eb30b4eb5156",
        "threshold": 0.3,
    },
    "roi-unet-v2": {
        "file": "roi_unet_v2.pt",
        "sha256": "83bcb58cabe32cbdba069f3effb952c3023c80450ce43ab763be6bcc116f4040",
        "threshold": 0.5,
    },
}


def resolve(model_id):
    """Path of the weight file of `model_id`, its hash checked."""
    entry = MODELS.get(model_id)
    if entry is None:
        raise MissingModelError(f"unknown ROI model {model_id!r} (known: {', '.join(MODELS)})")
    return checked_path("ROI model", model_id, entry, WEIGHTS_DIR)[0]


def model_id_string(model_id):
    """`name@sha256` as printed in reports."""
    return f"{model_id}@{MODELS[model_id]['sha256']}"
