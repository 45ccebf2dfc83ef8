"""Fixtures shared by the safety tests."""

from __future__ import annotations

import pytest

from bondhu.safety import load_helplines


@pytest.fixture(scope="module")
def helplines() -> dict:
    return load_helplines()
