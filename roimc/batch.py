"""Encode a whole folder tree of images into .rmc files, locally or on a Dask cluster.

    summary = run_batch("scans/", "compressed/")          # all cores, one file per process
    summary = run_batch("scans/", "compressed/", dask_scheduler="tcp://10.0.0.5:8786")
    $ roimc batch scans/ compressed/ --workers 8

What is encoded
    Every file under SRC_DIR (recursively, symbolic links to folders not followed) whose
    extension is one of .png, .tif, .tiff, .npy, .dcm or .dicom (any letter case). Other
    files are ignored. If DST_DIR lies inside SRC_DIR it is not searched.

Output names
    The tree is mirrored under DST_DIR: SRC_DIR/a/b/x.png is written to DST_DIR/a/b/x.rmc.
    When several sources in one folder would get the same output name (x.png and x.tif;
    names compared without regard to letter case), each of them keeps its extension:
    x.png.rmc and x.tif.rmc. A name that then still collides with another file's output
    (x.png.npy -> x.png.rmc beside x.png -> x.png.rmc) keeps its extension as well, until
    no two outputs share a name. Sources whose full names differ only in letter case
    (X.png, x.png) cannot be told apart on every file system: they are reported as failed.
    The rule depends on the set of files in the folder, so add or remove sources only
    between complete runs if you rely on stable output names.

Resuming
    Outputs are written atomically (temporary file beside the output, then rename), so an
    output that exists is complete: it is skipped, and a batch that was interrupted picks up
    where it stopped when run again. With verify=True (--verify) an existing output is first
    checked with roimc.container.parse (signature, CRCs, IEND) and encoded again if the
    check fails. A run killed outright (SIGKILL, power loss) may leave temporary files named
    .roimc-*.tmp beside the outputs; they are never taken for outputs and may be deleted.

Failures
    A file that cannot be read or encoded does not stop the batch: it is recorded with a
    one-line reason and the batch goes on. In a process pool, a worker process that dies
    (killed for memory, say) fails the files it had in flight, and a new pool carries on.

Parallelism
    workers=N (default os.cpu_count()) encodes N files at a time in a process pool, each with
    one thread; workers=1 encodes the files one after the other in this process, each with
    all cores (threads=None) unless a `threads` encode option is given.
    With dask_scheduler (an address such as "tcp://host:8786") or client (a
    distributed.Client), each file is one Dask task that reads its source and writes its
    output itself, with one thread; `workers` is then ignored. This assumes a shared file
    system: SRC_DIR and DST_DIR must be reachable at the same absolute paths on every Dask
    worker, and roimc must be installed there. Dask needs the `dask` and `distributed`
    packages (pip install dask distributed).

Summary
    DST_DIR/roimc-batch-summary.json (written atomically, also when the batch is
    interrupted) holds: the file counts (total = done + skipped + failed), bytes_in and
    bytes_out over the files whose output exists at the end of the run (done and skipped,
    so that a resumed run describes the whole batch), ratio = bytes_in / bytes_out, the
    failures (source path relative to SRC_DIR and reason), the elapsed seconds and whether
    the run was interrupted.

Command line
    roimc batch SRC_DIR DST_DIR prints the summary; its exit status is 0 when every file was
    encoded or skipped, 1 when any file failed or on an error (roimc: error: ...).
"""
import importlib
import json
import glob
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import click

from .cliutil import Command
from .errors import InputError, RmcError, UnsupportedError

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".npy")
DICOM_EXTENSIONS = (".dcm", ".dicom")
SOURCE_EXTENSIONS = IMAGE_EXTENSIONS + DICOM_EXTENSIONS
OUTPUT_EXTENSION = ".rmc"
SUMMARY_NAME = "roimc-batch-summary.json"
_MAX_REASON = 500

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


# --------------------------------------------------------------------------------------
# summary

@dataclass
class Summary:
    """The outcome of run_batch (see the module documentation for the meaning of fields)."""
    src_dir: str
    dst_dir: str
    mode: str = "lossless"
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    elapsed_seconds: float = 0.0
    failures: list = field(default_factory=list)   # [{"path": relative source, "reason": ...}]
    interrupted: bool = False
    summary_path: str = None

    @property
    def ratio(self):
        """bytes_in / bytes_out (None when nothing was written)."""
        return self.bytes_in / self.bytes_out if self.bytes_out else None

    @property
    def ok(self):
        """True when every file was encoded or skipped."""
        return self.failed == 0 and not self.interrupted

    def add(self, result):
        status, rel, reason, size_in, size_out = result
        self.total += 1
        if status == FAILED:
            self.failed += 1
            self.failures.append({"path": rel, "reason": reason})
            return
        if status == DONE:
            self.done += 1
        else:
            self.skipped += 1
        self.bytes_in += size_in
        self.bytes_out += size_out

    def to_dict(self):
        from . import __version__
        ratio = self.ratio
        return {
            "roimc_version": __version__,
            "source": self.src_dir,
            "destination": self.dst_dir,
            "mode": self.mode,
            "files": {"total": self.total, "done": self.done, "skipped": self.skipped,
                      "failed": self.failed},
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "ratio": None if ratio is None else round(ratio, 6),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "interrupted": self.interrupted,
            "failures": sorted(self.failures, key=lambda f: f["path"]),
        }


# --------------------------------------------------------------------------------------
# finding the sources and naming the outputs

def _ext(name):
    return os.path.splitext(name)[1].lower()


def is_source(name):
    """Whether a file name has one of the extensions run_batch encodes."""
    return _ext(name) in SOURCE_EXTENSIONS and not name.startswith(".roimc-")


def output_names(names):
    """{source file name: output file name} for the sources of one folder, by the rule of
    the module documentation; names that cannot be given distinct outputs map to None."""
    full = set()
    while True:
        target = {n: (n if n in full else os.path.splitext(n)[0]) + OUTPUT_EXTENSION
                  for n in names}
        groups = {}
        for n, t in target.items():
            groups.setdefault(t.casefold(), []).append(n)
        clashing = {n for g in groups.values() if len(g) > 1 for n in g}
        if clashing <= full:
            return {n: None if n in clashing else t for n, t in target.items()}
        full |= clashing


def plan(src_dir, dst_dir):
    """Walk src_dir: ([(relative source, source path, output path)], [(relative path,
    reason)]) in a stable order, the second list holding what cannot be planned."""
    src_dir, dst_dir = os.path.abspath(src_dir), os.path.abspath(dst_dir)
    real_dst = os.path.realpath(dst_dir)
    jobs, problems = [], []

    def unreadable(exc):
        rel = os.path.relpath(exc.filename, src_dir) if exc.filename else "."
        problems.append((_posix(rel), f"cannot list folder: {exc.strerror or exc}"))

    for folder, dirs, files in os.walk(src_dir, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs
                         if os.path.realpath(os.path.join(folder, d)) != real_dst)
        rel_folder = os.path.relpath(folder, src_dir)
        out_folder = dst_dir if rel_folder == "." else os.path.join(dst_dir, rel_folder)
        names = sorted(f for f in files if is_source(f))
        for name, out in output_names(names).items():
            rel = _posix(os.path.join(rel_folder, name) if rel_folder != "." else name)
            if out is None:
                problems.append((rel, "output name collides with another source whose "
                                      "name differs only in letter case"))
            else:
                jobs.append((rel, os.path.join(folder, name), os.path.join(out_folder, out)))
    jobs.sort()
    problems.sort()
    return jobs, problems


def _posix(rel):
    return rel.replace(os.sep, "/")


# --------------------------------------------------------------------------------------
# one file (runs in a worker process, a Dask task or inline)

def _one_line(text):
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 3] + "..."


def _reason(exc, path):
    if isinstance(exc, RmcError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    elif isinstance(exc, OSError):
        text = exc.strerror or str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    for prefix in ((f"{path}: ", f"{os.path.abspath(path)}: ") if path else ()):
        if text.startswith(prefix):   # the failure record names the file already
            text = text[len(prefix):]
    return _one_line(text) or type(exc).__name__


def _encode_source(path, mode, options):
    """The .rmc bytes of one source file."""
    if _ext(path) in DICOM_EXTENSIONS:
        try:
            dicom = importlib.import_module("roimc.dicom")
        except ImportError:
            raise UnsupportedError("DICOM unsupported: install pydicom") from None
        return dicom.encode_dicom(path, mode=mode, **options)
    from .api import encode
    from .io import read_image
    return encode(read_image(path), mode=mode, **options)


def _complete(path):
    """Whether the file at path is a well-formed .rmc container."""
    from . import container
    try:
        with open(path, "rb") as f:
            container.parse(f.read())
        return True
    except (RmcError, OSError):
        return False


def process_file(rel, src, dst, mode="lossless", options=None, verify=False):
    """Encode src into dst (atomically) unless dst exists (and, with verify, parses).
    Returns (status, rel, reason, bytes in, bytes out); never raises for a bad file."""
    from .io import atomic_write
    try:
        if os.path.isfile(dst) and (not verify or _complete(dst)):
            return SKIPPED, rel, None, os.path.getsize(src), os.path.getsize(dst)
        size_in = os.path.getsize(src)
        data = _encode_source(src, mode, dict(options or {}))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        atomic_write(dst, lambda f: f.write(data))
        return DONE, rel, None, size_in, len(data)
    except Exception as exc:   # KeyboardInterrupt and SystemExit go through
        return FAILED, rel, _reason(exc, src), 0, 0


# --------------------------------------------------------------------------------------
# running the batch

class _Progress:
    """tqdm on stderr when installed; else a plain counter on a terminal's stderr."""

    def __init__(self, total, enabled):
        self._bar = None
        self._total, self._count, self._last = total, 0, 0.0
        self._enabled = enabled
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self._enabled = enabled and sys.stderr.isatty()
            return
        self._bar = tqdm(total=total, unit="file", desc="roimc batch", file=sys.stderr,
                         dynamic_ncols=True, leave=True)

    def update(self, n=1, failed=0):
        self._count += n
        if self._bar is not None:
            self._bar.update(n)
            if failed:
                self._bar.set_postfix(failed=failed, refresh=False)
        elif self._enabled and (time.monotonic() - self._last > 0.5
                                or self._count == self._total):
            self._last = time.monotonic()
            sys.stderr.write(f"\rroimc batch: {self._count}/{self._total} files")
            sys.stderr.flush()

    def close(self):
        if self._bar is not None:
            self._bar.close()
        elif self._enabled and self._total:
            sys.stderr.write("\n")


def run_batch(src_dir, dst_dir, mode="lossless", workers=None, dask_scheduler=None,
              client=None, progress=True, verify=False, **encode_options):
    """Encode every image under src_dir into a mirrored tree of .rmc files under dst_dir.

    mode, **encode_options: passed to roimc.encode (coder, tile_size, bits, ...) or, for
        DICOM files, to roimc.dicom.encode_dicom.
    workers: processes encoding one file each (default os.cpu_count(); 1 = inline).
    dask_scheduler / client: run the files as tasks on a Dask cluster instead (a shared
        file system is assumed).
    progress: show a progress bar on stderr.
    verify: parse existing outputs before skipping them; encode again those that fail.
    Returns a Summary, also written to dst_dir/roimc-batch-summary.json. Raises RmcError for
    an unusable src_dir / dst_dir or parameter; KeyboardInterrupt propagates after the
    summary of the files finished so far is written (interrupted: true).
    See the module documentation for names, resuming and the summary's fields.
    """
    started = time.monotonic()
    if not os.path.isdir(src_dir):
        raise InputError(f"{src_dir}: not a folder")
    if os.path.exists(dst_dir) and not os.path.isdir(dst_dir):
        raise InputError(f"{dst_dir}: exists and is not a folder")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    distributed = client is not None or dask_scheduler is not None
    if not distributed and workers is None:
        workers = os.cpu_count() or 1
    if "threads" not in encode_options and (distributed or workers > 1):
        encode_options["threads"] = 1
    _check_options(mode, encode_options)
    os.makedirs(dst_dir, exist_ok=True)

    summary = Summary(src_dir=os.path.abspath(src_dir), dst_dir=os.path.abspath(dst_dir),
                      mode=mode)
    summary.summary_path = os.path.join(summary.dst_dir, SUMMARY_NAME)
    jobs, problems = plan(src_dir, dst_dir)
    for rel, reason in problems:
        summary.add((FAILED, rel, reason, 0, 0))
    todo = []
    for rel, src, dst in jobs:
        if os.path.isfile(dst) and not verify:
            summary.add(_skipped(rel, src, dst))
        else:
            todo.append((rel, src, dst))

    bar = _Progress(len(jobs) + len(problems), progress)
    bar.update(summary.total, summary.failed)
    args = (mode, encode_options, verify)
    try:
        if not todo:
            pass
        elif distributed:
            _run_dask(todo, args, summary, bar, client, dask_scheduler)
        elif workers == 1:
            for rel, src, dst in todo:
                summary.add(process_file(rel, src, dst, *args))
                bar.update(1, summary.failed)
        else:
            _run_pool(todo, args, summary, bar, workers)
    except BaseException:   # Ctrl-C, or an error that ends the batch: a partial summary
        summary.interrupted = True
        raise
    finally:
        bar.close()
        summary.elapsed_seconds = time.monotonic() - started
        _write_summary(summary)
    return summary


def _check_options(mode, options):
    """Raise the error every file would fail with (unknown mode or coder, bad tile size)
    before the batch starts."""
    import numpy as np
    from .api import encode
    try:
        encode(np.zeros((1, 1), np.uint8), mode=mode, **options)
    except TypeError:
        pass   # an option that only the DICOM reader takes


def _skipped(rel, src, dst):
    try:
        return SKIPPED, rel, None, os.path.getsize(src), os.path.getsize(dst)
    except OSError as exc:
        return FAILED, rel, _reason(exc, src), 0, 0


def _write_summary(summary):
    from .io import atomic_write
    text = json.dumps(summary.to_dict(), indent=2) + "\n"
    atomic_write(summary.summary_path, lambda f: f.write(text.encode()))


def _result_of(future, rel):
    """A future's result; a task that raised (not process_file itself) fails its file."""
    exc = future.exception()
    if exc is None:
        return future.result()
    if isinstance(exc, KeyboardInterrupt):
        raise KeyboardInterrupt
    return FAILED, rel, _one_line(f"worker failed: {_reason(exc, None)}"), 0, 0


def _pool_context():
    import multiprocessing
    # forkserver: no fork of a process that may run threads (tqdm, Dask, the caller's)
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return None


_busy = False   # in a pool worker: whether it is encoding a file


def _pool_worker_init():
    # Ctrl-C reaches the workers too: one that is encoding stops (its temporary file is
    # removed, the main process learns of the interruption); an idle one ignores it and is
    # shut down by the main process, without printing a traceback
    signal.signal(signal.SIGINT, _pool_sigint)


def _pool_sigint(signum, frame):
    if _busy:
        raise KeyboardInterrupt


def _pool_task(*args):
    global _busy
    _busy = True
    try:
        return process_file(*args)
    finally:
        _busy = False


def _remove_temporaries(folders):
    """Delete the .roimc-*.tmp files that workers killed mid-write left in `folders`."""
    for folder in set(folders):
        for name in glob.glob(os.path.join(glob.escape(folder), ".roimc-*.tmp")):
            try:
                os.unlink(name)
            except OSError:
                pass


def _run_pool(todo, args, summary, bar, workers):
    from concurrent.futures.process import BrokenProcessPool
    pending = list(reversed(todo))
    window = 2 * workers   # files in flight: bounds memory and what a dead worker takes
    out_dirs = {}
    while pending:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(),
                                   initializer=_pool_worker_init)
        running = {}
        try:
            while pending or running:
                while pending and len(running) < window:
                    rel, src, dst = pending.pop()
                    running[pool.submit(_pool_task, rel, src, dst, *args)] = rel
                    out_dirs[rel] = os.path.dirname(os.path.abspath(dst))
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for fut in finished:
                    rel = running.pop(fut)
                    if isinstance(fut.exception(), BrokenProcessPool):
                        broken = True
                        summary.add((FAILED, rel, "worker process died while encoding "
                                                  "(out of memory?)", 0, 0))
                    else:
                        summary.add(_result_of(fut, rel))
                    bar.update(1, summary.failed)
                if broken:   # the rest in flight died with it
                    for fut, rel in running.items():
                        summary.add((FAILED, rel, "worker process died while encoding "
                                                  "(out of memory?)", 0, 0))
                        bar.update(1, summary.failed)
                    running = {}
                    pool.shutdown(wait=True)
                    _remove_temporaries(out_dirs.values())
                    break
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            for fut, rel in running.items():   # count what finished before the interrupt
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    summary.add(fut.result())
            raise
        pool.shutdown(wait=True)


def _run_dask(todo, args, summary, bar, client, address):
    try:
        import distributed
    except ImportError:
        raise UnsupportedError("distributed processing needs the 'distributed' package "
                               "(pip install dask distributed)") from None
    own = None
    if client is None:
        try:
            own = client = distributed.Client(address, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise RmcError(f"cannot connect to the Dask scheduler at {address}: "
                           f"{_one_line(exc)}") from None
    futures = {}
    try:
        rels, srcs, dsts = zip(*((rel, os.path.abspath(s), os.path.abspath(d))
                                 for rel, s, d in todo))
        mode, options, verify = args
        batch = client.map(process_file, rels, srcs, dsts, mode=mode, options=options,
                           verify=verify, pure=False)
        futures = dict(zip(batch, rels))
        for fut in distributed.as_completed(batch):
            summary.add(_result_of(fut, futures[fut]))
            bar.update(1, summary.failed)
    except KeyboardInterrupt:
        if futures:
            client.cancel(list(futures))
        raise
    finally:
        if own is not None:
            own.close()


# --------------------------------------------------------------------------------------
# command line

class _BatchCommand(Command):
    interrupted = ("interrupted (the summary holds the files finished so far; run the same "
                   "command again to resume)")


def format_summary(summary):
    """The lines the batch command prints."""
    ratio = summary.ratio
    lines = [
        f"{summary.src_dir} -> {summary.dst_dir}",
        f"  files      {summary.total}: {summary.done} encoded, {summary.skipped} skipped "
        f"(already done), {summary.failed} failed",
        f"  bytes in   {summary.bytes_in}",
        f"  bytes out  {summary.bytes_out}"
        + (f"   ratio {ratio:.3f}:1" if ratio is not None else ""),
        f"  elapsed    {summary.elapsed_seconds:.1f} s",
        f"  summary    {summary.summary_path}",
    ]
    if summary.failures:
        lines.append("failures:")
        lines += [f"  {f['path']}: {f['reason']}"
                  for f in sorted(summary.failures, key=lambda f: f["path"])]
    return lines


@click.command("batch", cls=_BatchCommand)
@click.argument("src_dir", type=click.Path(file_okay=False))
@click.argument("dst_dir", type=click.Path(file_okay=False))
@click.option("--mode", type=click.Choice(["lossless"]), default="lossless", show_default=True,
              help="Coding mode. lossless: decoded samples equal the input bit for bit.")
@click.option("--effort", type=click.IntRange(1, 9), default=5, show_default=True,
              help="Encode time traded for size (see roimc encode --help).")
@click.option("--coder", type=click.Choice(["golomb", "huffman", "cm", "raw"]), default=None,
              help="Override the effort's residual coder (see roimc encode --help).")
@click.option("--tile-size", type=click.IntRange(16, 1 << 20), default=512, show_default=True,
              help="Tile edge in pixels.")
@click.option("--workers", type=click.IntRange(1, 4096), default=None,
              help="Files encoded at once, one process each (default: all cores; 1 = no "
                   "worker processes). Ignored with --dask-scheduler.")
@click.option("--dask-scheduler", metavar="ADDRESS", default=None,
              help="Run on a Dask cluster (e.g. tcp://host:8786); SRC_DIR and DST_DIR must "
                   "be at the same paths on every worker. Needs dask and distributed.")
@click.option("--verify", is_flag=True,
              help="Check that existing outputs parse before skipping them; encode again "
                   "those that do not.")
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
def batch(src_dir, dst_dir, mode, effort, coder, tile_size, workers, dask_scheduler, verify,
          no_progress):
    """Compress every image under SRC_DIR into a mirrored tree of .rmc files in DST_DIR.

    \b
    Sources: .png, .tif/.tiff, .npy, .dcm/.dicom, in all subfolders.
    SRC_DIR/a/b/x.png becomes DST_DIR/a/b/x.rmc; sources that would share an
    output name keep their extension (x.png.rmc, x.tif.rmc).
    Existing outputs are skipped, so an interrupted batch resumes when run again.
    A file that fails is reported and the others go on. The summary is also
    written to DST_DIR/roimc-batch-summary.json.
    Exit status: 0 if every file was encoded or skipped, 1 if any failed.
    """
    summary = run_batch(src_dir, dst_dir, mode=mode, workers=workers,
                        dask_scheduler=dask_scheduler, progress=not no_progress,
                        verify=verify, effort=effort, coder=coder, tile_size=tile_size)
    for line in format_summary(summary):
        click.echo(line)
    if summary.failed:
        sys.exit(1)
