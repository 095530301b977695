"""`bench data status`: per video dataset, its root, the videos its layout lists against those on disk, and the
frames `bench prepare` has produced. Every problem (no root, a missing split file, a plugin that fails to load) is
a cell of the table, never a traceback, so one broken dataset does not hide the others."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from bench.dataset import SPLITS, VideoDatasetAdapter
from bench.errors import BenchError
from bench.manifest import OK, failures, manifest_path, read_manifest_meta
from bench.prepare import prepare_config, video_adapter


def _error_text(err: Exception) -> str:
    return str(err) if isinstance(err, BenchError) else f"{type(err).__name__}: {err}"


def status_frame(cfg: Any) -> pd.DataFrame:
    """One row per (video dataset, split): root, videos listed by the layout / found on disk, prepared frames.
    Problems (no root, a missing split file, a broken plugin) are shown as text in the table."""
    from bench.plugins import get_plugins

    pcfg = prepare_config(cfg)
    registry = get_plugins().datasets
    rows: list[dict[str, Any]] = []
    for name in [pcfg.dataset] if pcfg.dataset else registry.names():
        try:
            if not pcfg.dataset and not issubclass(registry.get(name), VideoDatasetAdapter):
                continue  # image datasets have nothing to prepare
            adapter = video_adapter(name, cfg)
        except Exception as err:  # a broken plugin is reported, the others still shown
            rows.append({"dataset": name, "root": f"cannot load: {_error_text(err)}"})
            continue
        try:
            adapter.check()
            root, readable = str(adapter.root), True
        except BenchError:
            raw = getattr(adapter.cfg, "root", None)
            env = f" / env {adapter.root_env}" if adapter.root_env else ""
            root, readable = (f"{raw} (missing)" if raw else f"not set: datasets.{name}.root{env}"), False
        manifest = manifest_path(adapter)
        prepared = pd.read_parquet(manifest, columns=["split", "frame", "status"]) if manifest.is_file() else None
        prepared_splits = read_manifest_meta(manifest)["splits"] if prepared is not None else {}
        if not readable and prepared is None:  # nothing to show per split
            rows.append({"dataset": name, "root": root, "frames ok": "not prepared"})
            continue
        for split in SPLITS:
            row: dict[str, Any] = {"dataset": name, "root": root, "split": split}
            if readable:
                try:
                    videos = adapter.videos(split)
                    row["videos listed"] = len(videos)
                    row["found on disk"] = sum(os.path.isfile(v.path) for v in videos)
                except Exception as err:  # e.g. the official split files are not configured
                    row["videos listed"] = _error_text(err)
            if split in prepared_splits:
                part = prepared[prepared.split == split]
                row["frames ok"], row["failed"] = int((part.status == OK).sum()), failures(part)
            else:
                row["frames ok"] = "not prepared"
            rows.append(row)
    columns = ["dataset", "root", "split", "videos listed", "found on disk", "frames ok", "failed"]
    return pd.DataFrame(rows, columns=columns, dtype=object)  # object: counts and messages share columns


def data_status(cfg: Any) -> str:
    """`bench data status`: the status table as text."""
    from tabulate import tabulate

    frame = status_frame(cfg).fillna("")
    return tabulate(frame.values.tolist(), headers=list(frame.columns), disable_numparse=True)
