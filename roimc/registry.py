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


def save_atomic(torch, obj, path):
    """torch.save to path through a temporary file, so a killed run leaves no half file.
    The archive is built in memory, so its bytes (and SHA-256) do not depend on the file
    name (torch names the archive's folder after the file it is given)."""
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    with open(path + ".tmp", "wb") as f:
        f.write(buf.getvalue())
    os.replace(path + ".tmp", path)


def write_weights(torch, state, out, data, started, log=print):
    """Write a trained model's state ({"config", ..., "state_dict"}) to `out`, and beside it
    `out`.json recording its file name, SHA-256, every entry of the state but the weights, the
    training data and the seconds since `started`; returns the SHA-256."""
    import json
    import time
    save_atomic(torch, state, out)
    digest = sha256_of(out)
    log(f"wrote {out}: {os.path.getsize(out)} bytes, sha256 {digest}, "
        f"{time.time() - started:.0f} s in all")
    record = {"file": os.path.basename(out), "sha256": digest}
    record.update((k, v) for k, v in state.items() if k != "state_dict")
    record.update(data=os.path.abspath(data), seconds=round(time.time() - started))
    with open(out + ".json", "w") as f:
        json.dump(record, f, indent=1)
    return digest
