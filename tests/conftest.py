"""Shared fixtures: paths of the repository's declarative inputs."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root (holds experiments/, models/, assimilation/)."""
    return ROOT
