"""The C core under AddressSanitizer and UndefinedBehaviorSanitizer: round trips at every
plane depth (1..17 bits), all coders, odd sizes, and decoding of random and damaged streams
(tests/c/asan_driver.c)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CSRC = REPO / "csrc"
DRIVER = Path(__file__).resolve().parent / "c" / "asan_driver.c"
FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
         "-g", "-O1", "-std=gnu99"]
ENV = dict(os.environ,
           ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:allocator_may_return_null=0",
           UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not available")
    sources = sorted(str(p) for p in CSRC.glob("*.c"))
    exe = tmp_path_factory.mktemp("asan") / "asan_driver"
    build = subprocess.run([gcc, *FLAGS, f"-I{CSRC}", *sources, str(DRIVER), "-o", str(exe),
                            "-lm"], capture_output=True, text=True, timeout=180)
    if build.returncode != 0 and "sanitize" in build.stderr and "cannot find" in build.stderr:
        pytest.skip(f"gcc cannot link the sanitizer runtimes: {build.stderr.strip()[:300]}")
    assert build.returncode == 0, build.stderr
    return exe


def run(exe, *args, timeout=120):
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def test_sanitizers_are_active(driver):
    asan = run(driver, "--asan-canary")
    assert asan.returncode != 0 and "AddressSanitizer" in asan.stderr
    ubsan = run(driver, "--ubsan-canary")
    assert ubsan.returncode != 0 and "runtime error:" in ubsan.stderr


@pytest.mark.parametrize("seed", [1, 0x5EED, 20261121])
def test_core_is_clean_under_sanitizers(driver, seed):
    result = run(driver, 3000, seed)
    report = result.stdout + result.stderr
    assert not any(mark in report for mark in SANITIZER_MARKS), report[-4000:]
    assert "FAIL" not in report, report[-4000:]
    assert result.returncode == 0, report[-4000:]
    assert "failures 0" in result.stdout
