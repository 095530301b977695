"""`bench data status`: per dataset (video, image and plugin datasets alike) and split, its root, what its layout
lists (by label and by domain) against what is on disk, and the frames `bench prepare` has produced.

Every problem (no root, a missing split file, a plugin that fails to load) is shown with its real message in the
table, never a traceback, so one broken dataset does not hide the others.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from bench.dataset import SPLITS, DatasetAdapter, VideoDatasetAdapter
from bench.errors import BenchError
from bench.manifest import OK, failures, manifest_path, read_manifest_meta
from bench.prepare import prepare_config

COLUMNS = ["dataset", "root", "split", "listed", "by label", "by domain", "on disk", "frames ok", "failed"]


def _error_text(err: Exception) -> str:
    return str(err) if isinstance(err, BenchError) else f"{type(err).__name__}: {err}"


def build_adapter(name: str, cfg: Any) -> DatasetAdapter:
    """The registered dataset `name` (any kind) from `cfg.datasets.<name>`, cache folder `<paths.cache>/<name>`."""
    from bench.plugins import get_plugins

    cls = get_plugins().datasets.get(name)
    if name not in cfg.datasets:
        raise BenchError(f"no config for dataset {name!r}", key=f"datasets.{name}")
    return cls(cfg.datasets[name], Path(cfg.paths.cache).expanduser() / name)


def _counts(items: list, attr: str) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(Counter(getattr(i, attr) for i in items).items()))


def _split_row(adapter: DatasetAdapter, split: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    try:
        items = adapter.videos(split) if isinstance(adapter, VideoDatasetAdapter) else adapter.samples(split)
    except Exception as err:  # e.g. the official split files are not configured: the real reason, in the table
        row["listed"] = _error_text(err)
        return row
    row["listed"] = f"{len(items)} {'videos' if isinstance(adapter, VideoDatasetAdapter) else 'images'}"
    row["by label"] = ", ".join(f"{'fake' if k else 'real'} {v}" for k, v in sorted(Counter(i.label for i in items).items()))
    row["by domain"] = _counts(items, "domain")
    row["on disk"] = sum(os.path.isfile(i.path) for i in items)
    return row


def status_frame(cfg: Any) -> pd.DataFrame:
    from bench.plugins import get_plugins

    pcfg = prepare_config(cfg)
    rows: list[dict[str, Any]] = []
    for name in [pcfg.dataset] if pcfg.dataset else get_plugins().datasets.names():
        try:
            adapter = build_adapter(name, cfg)
        except Exception as err:  # a broken plugin is reported, the others still shown
            rows.append({"dataset": name, "root": f"cannot load: {_error_text(err)}"})
            continue
        if not adapter.needs_root:
            rows.append({"dataset": name, "root": "generated (no root needed)", "frames ok": "-"})
            continue
        try:
            adapter.check()
            root, readable = str(adapter.root), True
        except Exception as err:
            root, readable = _error_text(err), False
        video = isinstance(adapter, VideoDatasetAdapter)
        manifest = manifest_path(adapter) if video else None
        prepared = pd.read_parquet(manifest, columns=["split", "frame", "status"]) if manifest and manifest.is_file() else None
        prepared_splits = read_manifest_meta(manifest)["splits"] if prepared is not None else {}
        if not readable and prepared is None:
            rows.append({"dataset": name, "root": root, "frames ok": "not prepared" if video else "-"})
            continue
        for split in SPLITS:
            row: dict[str, Any] = {"dataset": name, "root": root, "split": split}
            if readable:
                row |= _split_row(adapter, split)
            if not video:
                row["frames ok"] = "- (read directly)"
            elif split in prepared_splits:
                part = prepared[prepared.split == split]
                limit = prepared_splits[split].get("max_videos")
                row["frames ok"] = int((part.status == OK).sum()) if limit is None else f"{int((part.status == OK).sum())} (trial: {limit} videos)"
                row["failed"] = failures(part)
            else:
                row["frames ok"] = "not prepared"
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS, dtype=object)  # object: counts and messages share columns


def data_status(cfg: Any) -> str:
    """`bench data status`: the status table as text."""
    from tabulate import tabulate

    frame = status_frame(cfg).fillna("")
    return tabulate(frame.values.tolist(), headers=list(frame.columns), disable_numparse=True, maxcolwidths=[None, 60] + [None] * 7)
