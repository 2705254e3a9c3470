"""Canary: a file and an environment variable that a successful escape would touch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CANARY = Path(os.environ.get("TMPDIR", "/tmp")) / "guideline-engine-canary"


@pytest.fixture(autouse=True)
def canary():
    CANARY.unlink(missing_ok=True)
    os.environ["GUIDELINE_CANARY_SECRET"] = "s3cret-canary"
    yield CANARY
    assert not CANARY.exists(), "a payload managed to write the canary file"
    os.environ.pop("GUIDELINE_CANARY_SECRET", None)
