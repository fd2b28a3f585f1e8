"""Shared fixtures: make the repository importable, locate the development corpus."""
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CORPUS = REPO.parent / "shared" / "corpus"


def corpus_images():
    """Every real image of the corpus (train and val), masks (*.roi.png) left out."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for split in ("train", "val") if (CORPUS / split).is_dir()
                  for p in (CORPUS / split).glob("*.png") if not p.name.endswith(".roi.png"))


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def corpus_dir():
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)
