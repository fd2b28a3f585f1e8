"""The registry of shipped codec models: id -> weight file and SHA-256 (models are data).

A lossy or hybrid file names its decoder in chunk DCID (id and SHA-256 of the weight file);
decoding resolves the id here, or takes a user's weight file (`--model PATH`) whose hash must
match the file's. A missing or different model is an error that names the id."""
import os

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
DEFAULT_MODEL = "roimc-ae-v3"

MODELS = {
    "roimc-ae-v3": {
        "file": "roimc_ae_v3.pt",
        "sha256": "8d1c3e8028d1cbc21cf5836fc1ae0cc86c5b86cc47f2b5a72183a6a907abc460",
    },
    "roimc-ae-v2": {   # decodes the files written with it
        "file": "roimc_ae_v2.pt",
        "sha256": "37fedaa17b3c27e3af47ba78986de61c9110bb6c6070b1ecb655d2374f8897e0",
    },
    "roimc-ae-v1": {   # decodes the files written with it
        "file": "roimc_ae_v1.pt",
        "sha256": "a2de2efed3a8a49dc80395b58e78a94c1cfb8303831b6f13f78e6b61ee37bbb7",
    },
}
