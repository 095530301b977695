"""Which logged runs are results, and which of them are the same method (docs/run-record.md, "Run identity").

Input: MLflow's `search_runs` frame (`run_id`, `status`, `start_time`, `params.*`, `tags.*`, `metrics.*`).
`describe` adds one normalised column per property of the run record (RUN_COLUMNS); runs logged before a tag
existed get it inferred from what they did log (see `describe`). `screen` says why a run cannot be a result.
`variant_labels` names what sets a group of runs apart from the detector's default config.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bench.rundir import STALE_AFTER_S  # the writer refreshes bench.heartbeat every minute while a run lives

# Flattened config keys that do not change what is measured (docs/run-record.md).
ALLOW_LIST = frozenset({"trainer.seed", "trainer.device", "trainer.num_workers", "trainer.progress",
                        "trainer.log_every", "trainer.resume", "trainer.eval_batch_size", "trainer.bootstrap",
                        "trainer.devices", "trainer.channels_last", "trainer.compile", "meta.overrides"})
ALLOW_PREFIXES = ("tracking.", "paths.")
DATASET_LOCATION = ("root", "splits_dir")  # datasets.<name>.<these> say where the data is, not what it is
NULL = ("", "null", "None", "nan")
TEST_AUC = re.compile(r"^metrics\.(?!(?:train|val|epoch)/)([^/]+)/auc$")  # a test set's frame AUC

RUN_COLUMNS = ("short_id", "kind", "detector", "protocol", "version", "scale", "seed", "commit", "dirty", "complete",
               "health", "heartbeat", "stale", "run_dir", "source_run", "perturbation", "leak", "config")


def _text(row: Mapping, name: str, default: str = "") -> str:
    value = row.get(name)
    return default if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _bool_tag(row: Mapping, name: str) -> bool | None:
    value = _text(row, name).lower()
    return {"true": True, "false": False}.get(value)


def identity_params(row: Mapping) -> dict[str, str]:
    """The run's flattened config minus the allow-list: what must agree for two runs to be the same method."""
    params = {k.removeprefix("params."): _text(row, k) for k in row
              if isinstance(k, str) and k.startswith("params.") and _text(row, k, "\0") != "\0"}
    used = {v for k, v in params.items() if re.fullmatch(r"protocol\.(train|val|test\.[^.]+)\.dataset", k)}
    return {k: v for k, v in params.items() if not _allowed(k, used)}


def _allowed(key: str, used_datasets: set[str]) -> bool:
    if key in ALLOW_LIST or key.startswith(ALLOW_PREFIXES):
        return True
    parts = key.split(".")
    if parts[0] == "datasets" and len(parts) >= 3:
        return parts[1] not in used_datasets or parts[2] in DATASET_LOCATION
    return False


def _complete(row: Mapping) -> bool:
    """bench.complete, or for older runs: no per-epoch step cap, epochs >= 1 and a best epoch >= 1 when logged."""
    tag = _bool_tag(row, "tags.bench.complete")
    if tag is not None:
        return tag
    capped = _text(row, "params.trainer.max_steps_per_epoch") not in NULL
    epochs = pd.to_numeric(_text(row, "params.trainer.epochs", "1"), errors="coerce")
    best = pd.to_numeric(_text(row, "metrics.best_epoch", "1"), errors="coerce")
    return not capped and bool(epochs >= 1) and not bool(best < 1)


def _health(row: Mapping) -> str:
    """bench.health, or for older runs: `constant_scores` when every test set's AUC is exactly 0.5, else `ok`."""
    tag = _text(row, "tags.bench.health")
    if tag:
        return tag
    aucs = [row[k] for k in row if isinstance(k, str) and TEST_AUC.match(k) and pd.notna(row[k])]
    return "constant_scores" if aucs and all(a == 0.5 for a in aucs) else "ok"


def describe(runs: pd.DataFrame, now: float | None = None) -> pd.DataFrame:
    """`runs` with RUN_COLUMNS added. Runs without the newer tags (logged before they existed): `run_kind` = train
    (evaluate runs did not exist), dirty = the commit ends in `+dirty`, complete and health as in `_complete` and
    `_health`, heartbeat = the start time."""
    now = time.time() if now is None else now
    records = []
    for row in runs.to_dict("records"):
        commit = _text(row, "tags.bench.git_commit", "unknown")
        dirty = _bool_tag(row, "tags.bench.git_dirty")
        start = pd.Timestamp(row["start_time"]).timestamp() if pd.notna(row.get("start_time")) else now
        heartbeat = float(pd.to_numeric(_text(row, "tags.bench.heartbeat", str(start)), errors="coerce"))
        splits = {_text(row, f"params.protocol.{part}.split") for part in ("train", "val")}
        records.append({
            "short_id": str(row["run_id"])[:8],
            "kind": _text(row, "tags.bench.run_kind", "train"),
            "detector": _text(row, "tags.bench.detector") or _text(row, "params.detector.name"),
            "protocol": _text(row, "tags.bench.protocol") or _text(row, "params.protocol.name"),
            "version": _text(row, "params.protocol.version") or _text(row, "tags.bench.protocol_version"),
            "scale": _text(row, "tags.bench.scale") or _text(row, "params.meta.scale", "full"),
            "seed": _text(row, "params.trainer.seed"),
            "commit": commit.removesuffix("+dirty")[:7] if commit != "unknown" else commit,
            "dirty": commit.endswith("+dirty") if dirty is None else dirty,
            "complete": _complete(row),
            "health": _health(row),
            "heartbeat": heartbeat,
            "stale": row.get("status") == "RUNNING" and now - heartbeat > STALE_AFTER_S,
            "run_dir": _text(row, "tags.bench.run_dir"),
            "source_run": _text(row, "tags.bench.source_run"),
            "perturbation": _text(row, "tags.bench.perturbation", "none"),
            "leak": "test" in splits,
            "config": identity_params(row),
        })
    described = pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS), index=runs.index)
    return pd.concat([runs.drop(columns=[c for c in RUN_COLUMNS if c in runs]), described], axis=1)


def screen(runs: pd.DataFrame, include: frozenset[str] = frozenset()) -> tuple[pd.Series, pd.Series]:
    """(reason each run cannot be a result, "" if it can; the opted-in problems of each run, "" if none).

    `include` opts in runs with `dirty`, `incomplete` or `unhealthy` problems; they are marked, never mixed in.
    Never opted in: unfinished runs (no test metrics) and runs trained or validated on a test split.
    """
    reasons, marks = [], []
    for run in runs.itertuples():
        problems = {"dirty": "dirty work tree" if run.dirty else "",
                    # an evaluate run trains nothing: its source run's completeness is what counts
                    "incomplete": "incomplete (capped epochs, interrupted or untrained)"
                                  if not run.complete and run.kind != "evaluate" else "",
                    "unhealthy": f"health {run.health}" if run.health != "ok" else ""}
        if run.status != "FINISHED":
            reason = f"stale RUNNING (no heartbeat for {STALE_AFTER_S / 60:.0f} min: killed?)" if run.stale else str(run.status)
        elif run.leak:
            reason = "trained or validated on a test split"
        else:
            reason = next((text for name, text in problems.items() if text and name not in include), "")
        reasons.append(reason)
        marks.append(", ".join(name if name != "unhealthy" else run.health for name, text in problems.items()
                               if text and not reason))
    return pd.Series(reasons, index=runs.index, dtype=object), pd.Series(marks, index=runs.index, dtype=object)


@functools.lru_cache(maxsize=64)
def _reference(protocol: str, detector: str, scale: str) -> tuple[tuple[str, str], ...] | None:
    """The identity params of `bench run protocol=P detector=D scale=S` with today's defaults; None when that
    does not compose (a plugin that is not installed, a protocol that no longer exists)."""
    try:
        from omegaconf import OmegaConf

        from bench.compose import compose_run
        from bench.tracking import MAX_PARAM_CHARS, flatten

        cfg = compose_run([f"protocol={protocol}", f"detector={detector}", f"scale={scale}"])
        flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    except Exception:  # any failure only means "no reference": labels fall back to the other groups
        return None
    row = {f"params.{k}": str(v)[:MAX_PARAM_CHARS] for k, v in flat.items()}
    return tuple(sorted(identity_params(row).items()))


def reference_config(protocol: str, detector: str, scale: str) -> dict[str, str] | None:
    ref = _reference(protocol, detector, scale or "full")
    return None if ref is None else dict(ref)


def _differences(config: dict[str, str], other: dict[str, str], skip: set[str]) -> dict[str, str]:
    keys = [k for k in config.keys() | other.keys() if k not in skip and config.get(k) != other.get(k)]
    return {k: config.get(k, "<unset>") for k in sorted(keys)}


def variant_labels(groups: pd.DataFrame, skip: set[str] = frozenset()) -> list[str]:
    """One label per group (rows of `groups`: protocol, detector, scale, slot, config): the config keys in which
    it differs from the default config of its protocol, detector and scale (keys the run did not log at all, i.e.
    options added later, are not counted). Without a default (it does not compose), the keys in which the groups
    of the same slot differ. Groups of one slot that would share a label get the keys that tell them apart."""
    labels: list[dict[str, str]] = []
    for g in groups.itertuples():
        ref = reference_config(g.protocol, g.detector, g.scale)
        if ref is not None:
            diff = {k: v for k, v in _differences(g.config, ref, set(skip)).items() if k in g.config}
        else:
            peers = [p.config for p in groups.itertuples() if p.slot == g.slot and p.Index != g.Index]
            varying = {k for p in peers for k in _differences(g.config, p, set(skip))}
            diff = {k: g.config.get(k, "<unset>") for k in sorted(varying)}
        labels.append(diff)
    slots = list(groups["slot"])
    for i in range(len(labels)):  # disambiguate groups of one slot with the same label
        for j in range(len(labels)):
            if i != j and slots[i] == slots[j] and labels[i] == labels[j]:
                extra = _differences(groups["config"].iloc[i], groups["config"].iloc[j], set(skip))
                labels[i] = {**labels[i], **extra}
    return [", ".join(f"{k}={v}" for k, v in sorted(d.items())) for d in labels]
