"""roimc.batch: a folder tree of images encoded into a mirrored tree of .rmc files, with
resume, failures that do not stop the batch, a summary file, process pools, Dask and the
command line."""
import importlib.util
import json
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import roimc
from roimc import batch as rb
from roimc.errors import RmcError

SUMMARY = rb.SUMMARY_NAME

# relative output -> relative source of every file that encodes
GOOD = {
    "gray8.rmc": "gray8.png",
    "gray16.rmc": "gray16.png",
    "ct.rmc": "ct.tif",
    "signed.rmc": "signed.npy",
    "same.png.rmc": "same.png",
    "same.tif.rmc": "same.tif",
    "nested/rgb.rmc": "nested/rgb.png",
    "nested/deeper/frames.rmc": "nested/deeper/frames.tiff",
    "nested/deeper/mask.rmc": "nested/deeper/mask.npy",
}
BAD = {"broken.png", "nested/float.npy", "scan.dcm"}


def _write_png(path, a):
    Image.fromarray(a).save(path)


def make_tree(root, seed=7):
    """Small generated images of every kind, a nested folder, a name collision, a corrupt
    PNG, an unsupported float .npy, an unreadable .dcm and files that are not images."""
    import tifffile
    rng = np.random.default_rng(seed)
    (root / "nested" / "deeper").mkdir(parents=True)
    y, x = np.mgrid[0:23, 0:31]
    _write_png(root / "gray8.png", ((x * 7 + y * 3) % 256).astype(np.uint8))
    _write_png(root / "gray16.png", (x * 2000 + y * 37 + rng.integers(0, 50, x.shape))
               .astype(np.uint16))
    tifffile.imwrite(root / "ct.tif", rng.integers(0, 4096, (19, 17)).astype(np.uint16))
    np.save(root / "signed.npy", rng.integers(-1024, 3000, (16, 21)).astype(np.int16))
    _write_png(root / "same.png", rng.integers(0, 256, (9, 11), dtype=np.uint8))
    tifffile.imwrite(root / "same.tif", rng.integers(0, 256, (9, 11), dtype=np.uint8))
    _write_png(root / "nested" / "rgb.png", rng.integers(0, 256, (13, 12, 3), dtype=np.uint8))
    tifffile.imwrite(root / "nested" / "deeper" / "frames.tiff",
                     rng.integers(0, 1000, (3, 10, 14)).astype(np.uint16),
                     photometric="minisblack")
    np.save(root / "nested" / "deeper" / "mask.npy", rng.integers(0, 2, (8, 8)).astype(np.uint8))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    np.save(root / "nested" / "float.npy", rng.random((5, 5)).astype(np.float32))
    (root / "scan.dcm").write_bytes(b"\0" * 64)
    (root / "notes.txt").write_text("not an image")
    (root / "nested" / "old.rmc").write_bytes(b"ignored: not a source")
    return root


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "src")


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def mtimes(root):
    return {rel: (root / rel).stat().st_mtime_ns for rel in files_under(root)}


def check_outputs(src, dst, summary):
    """The complete, correct result of a batch over make_tree."""
    assert files_under(dst) == sorted(list(GOOD) + [SUMMARY])  # mirrored, no temp files
    for out, source in GOOD.items():
        expected = roimc.io.read_image(str(src / source))
        decoded = roimc.decode((dst / out).read_bytes())
        assert decoded.dtype == expected.dtype, out
        assert decoded.shape == expected.shape, out
        assert np.array_equal(decoded, expected), out
    assert summary.total == len(GOOD) + len(BAD)
    assert summary.done + summary.skipped == len(GOOD)
    assert summary.failed == len(BAD)
    failures = {f["path"]: f["reason"] for f in summary.failures}
    assert set(failures) == BAD
    for path, reason in failures.items():
        assert reason and "\n" not in reason and "Traceback" not in reason, (path, reason)
        assert str(src) not in reason   # the record names the file; the reason does not
    assert "float32" in failures["nested/float.npy"]
    if importlib.util.find_spec("roimc.dicom") is None:
        assert failures["scan.dcm"] == "DICOM unsupported: install pydicom"

    data = json.loads((dst / SUMMARY).read_text())
    assert data["files"] == {"total": summary.total, "done": summary.done,
                             "skipped": summary.skipped, "failed": summary.failed}
    assert data["failures"] == sorted(summary.failures, key=lambda f: f["path"])
    assert data["interrupted"] is False
    assert data["mode"] == "lossless"
    assert data["elapsed_seconds"] >= 0
    size_in = sum((src / s).stat().st_size for s in GOOD.values())
    size_out = sum((dst / o).stat().st_size for o in GOOD)
    assert data["bytes_in"] == summary.bytes_in == size_in
    assert data["bytes_out"] == summary.bytes_out == size_out
    assert data["ratio"] == pytest.approx(size_in / size_out, rel=1e-5)
    return data


def test_output_names():
    assert rb.output_names(["x.png", "y.tif", "z.NPY"]) == {
        "x.png": "x.rmc", "y.tif": "y.rmc", "z.NPY": "z.rmc"}
    assert rb.output_names(["x.png", "x.tif", "y.png"]) == {
        "x.png": "x.png.rmc", "x.tif": "x.tif.rmc", "y.png": "y.rmc"}
    # letter case: X.png and x.tif would clash on a case-insensitive file system
    assert rb.output_names(["X.png", "x.tif"]) == {"X.png": "X.png.rmc", "x.tif": "x.tif.rmc"}
    # x.png.npy -> x.png.rmc would clash with the renamed x.png: it keeps its extension too
    assert rb.output_names(["x.png", "x.tif", "x.png.npy"]) == {
        "x.png": "x.png.rmc", "x.tif": "x.tif.rmc", "x.png.npy": "x.png.npy.rmc"}
    assert rb.output_names(["x.png", "x.png.npy"]) == {   # no clash: the plain rule
        "x.png": "x.rmc", "x.png.npy": "x.png.rmc"}
    # names that differ only in case cannot be given distinct outputs everywhere
    assert rb.output_names(["A.png", "a.png", "b.png"]) == {
        "A.png": None, "a.png": None, "b.png": "b.rmc"}
    assert rb.is_source("scan.DICOM") and rb.is_source("a.tiff")
    assert not rb.is_source("a.rmc") and not rb.is_source(".roimc-x.tmp")


def test_batch_inline(tree, tmp_path):
    dst = tmp_path / "out"
    summary = rb.run_batch(tree, dst, workers=1, progress=False)
    assert summary.done == len(GOOD) and summary.skipped == 0
    assert not summary.ok and not summary.interrupted
    assert summary.summary_path == str(dst / SUMMARY)
    check_outputs(tree, dst, summary)

    # a second run finds everything done: nothing is written again
    before = mtimes(dst)
    again = rb.run_batch(tree, dst, workers=1, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, len(GOOD), len(BAD))
    data = check_outputs(tree, dst, again)
    assert data["files"]["skipped"] == len(GOOD)
    after = mtimes(dst)
    assert {k: v for k, v in after.items() if k != SUMMARY} == \
        {k: v for k, v in before.items() if k != SUMMARY}


def test_encode_options_are_used(tree, tmp_path):
    dst = tmp_path / "out"
    rb.run_batch(tree, dst, workers=1, progress=False, coder="huffman", tile_size=16)
    info = roimc.info((dst / "gray16.rmc").read_bytes())
    assert info["tile"] == [16, 16]
    assert np.array_equal(roimc.decode((dst / "gray16.rmc").read_bytes()),
                          roimc.io.read_image(str(tree / "gray16.png")))


def test_resume_after_interrupt(tree, tmp_path, monkeypatch):
    dst = tmp_path / "out"
    real = rb._encode_source
    calls = []

    def interrupted_after_three(path, mode, options):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(path, mode, options)

    monkeypatch.setattr(rb, "_encode_source", interrupted_after_three)
    with pytest.raises(KeyboardInterrupt):
        rb.run_batch(tree, dst, workers=1, progress=False)
    monkeypatch.setattr(rb, "_encode_source", real)

    partial = json.loads((dst / SUMMARY).read_text())
    assert partial["interrupted"] is True
    first = [p for p in files_under(dst) if p != SUMMARY]
    assert not any(".tmp" in p or ".roimc-" in p for p in files_under(dst))
    processed = partial["files"]["done"] + partial["files"]["failed"]
    assert processed == 3 and len(first) == partial["files"]["done"] >= 1
    before = mtimes(dst)

    summary = rb.run_batch(tree, dst, workers=1, progress=False)
    assert summary.skipped == len(first)
    assert summary.done == len(GOOD) - len(first)
    check_outputs(tree, dst, summary)
    after = mtimes(dst)
    assert all(after[p] == before[p] for p in first)


def test_resume_after_deleted_outputs_and_verify(tree, tmp_path):
    dst = tmp_path / "out"
    rb.run_batch(tree, dst, workers=1, progress=False)
    for gone in ("ct.rmc", "nested/deeper/frames.rmc"):
        (dst / gone).unlink()
    os.rmdir(dst / "nested" / "deeper") if not any((dst / "nested" / "deeper").iterdir()) \
        else None
    before = mtimes(dst)
    summary = rb.run_batch(tree, dst, workers=1, progress=False)
    assert (summary.done, summary.skipped) == (2, len(GOOD) - 2)
    check_outputs(tree, dst, summary)
    after = mtimes(dst)
    assert all(after[p] == before[p] for p in before if p != SUMMARY)

    # a damaged output is taken as done, unless verify=True checks it
    good = (dst / "gray8.rmc").read_bytes()
    (dst / "gray8.rmc").write_bytes(good[:-5])
    plain = rb.run_batch(tree, dst, workers=1, progress=False)
    assert plain.skipped == len(GOOD) and (dst / "gray8.rmc").read_bytes() == good[:-5]
    checked = rb.run_batch(tree, dst, workers=1, progress=False, verify=True)
    assert (checked.done, checked.skipped) == (1, len(GOOD) - 1)
    check_outputs(tree, dst, checked)


def test_dicom_without_reader(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.dcm").write_bytes(b"\0" * 200)
    (src / "b.DICOM").write_bytes(b"\0" * 200)
    monkeypatch.setitem(sys.modules, "roimc.dicom", None)   # import fails
    summary = rb.run_batch(src, tmp_path / "out", workers=1, progress=False)
    assert summary.failures == [{"path": "a.dcm", "reason": "DICOM unsupported: install pydicom"},
                                {"path": "b.DICOM",
                                 "reason": "DICOM unsupported: install pydicom"}]


def test_bad_arguments(tmp_path):
    with pytest.raises(RmcError, match="not a folder"):
        rb.run_batch(tmp_path / "missing", tmp_path / "out", progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RmcError, match="not a folder"):
        rb.run_batch(tmp_path, tmp_path / "file", progress=False)
    with pytest.raises(RmcError, match="workers"):
        rb.run_batch(tmp_path, tmp_path / "out", workers=0, progress=False)
    with pytest.raises(RmcError, match="unknown coder"):
        rb.run_batch(tmp_path, tmp_path / "out", workers=1, progress=False, coder="zip")
    with pytest.raises(RmcError, match="unknown mode"):
        rb.run_batch(tmp_path, tmp_path / "out", workers=1, progress=False, mode="holographic")


def test_dask_missing(tree, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(RmcError, match="'distributed' package"):
        rb.run_batch(tree, tmp_path / "out", dask_scheduler="tcp://127.0.0.1:1",
                     progress=False)


def test_destination_inside_source(tree):
    dst = tree / "compressed"
    summary = rb.run_batch(tree, dst, workers=1, progress=False)
    assert summary.done == len(GOOD)
    again = rb.run_batch(tree, dst, workers=1, progress=False)   # its outputs are not sources
    assert (again.total, again.skipped) == (len(GOOD) + len(BAD), len(GOOD))


def test_process_pool(tree, tmp_path):
    dst = tmp_path / "out"
    summary = rb.run_batch(tree, dst, workers=2, progress=False)
    assert summary.done == len(GOOD)
    check_outputs(tree, dst, summary)


def test_dead_worker_process(tree, tmp_path, monkeypatch):
    """A worker process that dies fails the files it had in flight; the batch goes on."""
    import multiprocessing
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method to hand the patched function to workers")
    real = rb._encode_source

    def dies_on_ct(path, mode, options):
        if path.endswith("ct.tif"):
            os._exit(3)
        return real(path, mode, options)

    monkeypatch.setattr(rb, "_encode_source", dies_on_ct)
    monkeypatch.setattr(rb, "_pool_context", lambda: multiprocessing.get_context("fork"))
    dst = tmp_path / "out"
    summary = rb.run_batch(tree, dst, workers=1 + 1, progress=False)
    failures = {f["path"]: f["reason"] for f in summary.failures}
    assert "worker process died" in failures["ct.tif"]
    lost = {p for p, r in failures.items() if "worker process died" in r}
    assert summary.total == len(GOOD) + len(BAD)
    lost_good = lost & set(GOOD.values())          # bad files may be lost too
    assert summary.done == len(GOOD) - len(lost_good)   # the others were encoded by a new pool
    assert summary.done >= len(GOOD) - 4           # at most the 2 * workers files in flight
    assert not any(".roimc-" in p for p in files_under(dst))

    monkeypatch.setattr(rb, "_encode_source", real)
    again = rb.run_batch(tree, dst, workers=1, progress=False)   # a rerun completes the batch
    check_outputs(tree, dst, again)


def test_progress_bar(tree, tmp_path, capsys):
    pytest.importorskip("tqdm")
    rb.run_batch(tree, tmp_path / "out", workers=1, progress=True)
    captured = capsys.readouterr()
    assert "roimc batch" in captured.err and f"{len(GOOD) + len(BAD)}/" in captured.err
    assert captured.out == ""


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_dask_client(dask_cluster, tree, tmp_path):
    _, client = dask_cluster
    dst = tmp_path / "out"
    summary = rb.run_batch(tree, dst, client=client, progress=False)
    assert summary.done == len(GOOD)
    check_outputs(tree, dst, summary)
    (dst / "signed.rmc").unlink()
    again = rb.run_batch(tree, dst, client=client, progress=False)
    assert (again.done, again.skipped) == (1, len(GOOD) - 1)
    check_outputs(tree, dst, again)


def test_dask_scheduler_address(dask_cluster, tree, tmp_path):
    cluster, _ = dask_cluster
    dst = tmp_path / "out"
    summary = rb.run_batch(tree, dst, dask_scheduler=cluster.scheduler_address, progress=False)
    assert summary.done == len(GOOD)
    check_outputs(tree, dst, summary)


def test_cli(tree, tmp_path):
    runner = CliRunner()
    dst = tmp_path / "out"
    result = runner.invoke(rb.batch, [str(tree), str(dst), "--workers", "1", "--no-progress",
                                      "--coder", "huffman"])
    assert result.exit_code == 1, result.output   # some files failed
    assert f"{len(GOOD) + len(BAD)}: {len(GOOD)} encoded, 0 skipped" in result.output
    assert "ratio" in result.output and "bytes in" in result.output
    assert "failures:" in result.output
    assert "nested/float.npy: float32 samples are not supported" in result.output
    assert "broken.png: " in result.output
    check_outputs(tree, dst, rb.run_batch(tree, dst, workers=1, progress=False))

    # a tree where everything succeeds: exit status 0, also when all is skipped
    good = tmp_path / "good"
    (good / "sub").mkdir(parents=True)
    np.save(good / "sub" / "a.npy", np.arange(20, dtype=np.uint16).reshape(4, 5))
    for expected in ("1 encoded, 0 skipped", "0 encoded, 1 skipped"):
        result = runner.invoke(rb.batch, [str(good), str(tmp_path / "good-out"),
                                          "--no-progress"])
        assert result.exit_code == 0, result.output
        assert expected in result.output and "failures:" not in result.output
    assert (tmp_path / "good-out" / "sub" / "a.rmc").is_file()

    result = runner.invoke(rb.batch, [str(tmp_path / "missing"), str(dst), "--no-progress"])
    assert result.exit_code == 1
    assert "roimc: error: " in result.output and "not a folder" in result.output
    assert "Traceback" not in result.output
