"""Test-session setup: every generated or written file goes to temporary folders, never to $HOME or the repo."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def bench_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {
        "BENCH_CACHE": str(tmp_path_factory.mktemp("bench-cache")),  # synthetic benchmark generated once per session
        "BENCH_OUTPUT": str(tmp_path_factory.mktemp("bench-outputs")),
        "MPLBACKEND": "Agg",
    }
    os.environ.update(env)
    return env


@pytest.fixture
def mlflow_uri(tmp_path) -> str:
    """A fresh MLflow sqlite store for one test."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
