"""The registry of shipped codec models: id -> weight file and SHA-256 (models are data).

A lossy or hybrid file names its decoder in chunk DCID (id and SHA-256 of the weight file);
decoding resolves the id here, or takes a user's weight file (`--model PATH`) whose hash must
match the file's. A missing or different model is an error that names the id."""
import os

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
DEFAULT_MODEL = "roimc-ae-v1"

MODELS = {
    DEFAULT_MODEL: {
        "file": "roimc_ae_v1.pt",
        "sha256": "0f19eeb477f6c49b3c7d1ea449ed37dda55bf92da88526e440847d895ef658fd",
    },
}
