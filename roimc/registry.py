"""What the model registries share (models are data): the SHA-256 of a weight file and the
checked path of a registry entry. numpy-free and torch-free."""
import hashlib
import os

from .errors import MissingModelError


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checked_path(what, model_id, entry, weights_dir):
    """(path, sha256) of the weight file of registry entry `entry` ({"file", "sha256"}) in
    weights_dir; MissingModelError naming `what` and the id when it is missing or differs."""
    path = os.path.join(weights_dir, entry["file"])
    if not os.path.exists(path):
        raise MissingModelError(f"{what} {model_id}: weight file {entry['file']} is not "
                                f"installed")
    digest = sha256_of(path)
    if digest != entry["sha256"]:
        raise MissingModelError(f"{what} {model_id}: {entry['file']} has SHA-256 "
                                f"{digest[:16]}..., the registry expects "
                                f"{entry['sha256'][:16] or '(none)'}...")
    return path, digest
