"""`bench predict PATH... --run RUN | --checkpoint best.pt`: probability of fake for images, folders and videos.

The detector is rebuilt from the run folder's `config.yaml` (the checkpoint beside it is the one selected on
validation data) and sees what it was trained on: face crops made as `bench prepare` makes them (the face track of
a video, or the best face of an image; `margin` and `size` as prepared) through the detector's own eval transform.
A video's probability is the mean over its frames, as the video-level metrics score videos.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"}


@dataclass
class FramePrediction:
    path: str
    frame: int  # 0 for an image
    status: str  # ok | no_face | off_track | decode_error
    p_fake: float | None
    face: list[int] | None  # (x0, y0, x1, y1) in frame pixels
    face_score: float | None


@dataclass
class InputPrediction:
    path: str
    kind: str  # image | video
    frames: int  # frames looked at
    faces: int  # frames with a face (scored)
    p_fake: float | None  # mean over the scored frames; None when no face was found
    note: str = ""


def find_run(run: str | None, checkpoint: str | None, uri: str) -> tuple[Path, Path]:
    """(config.yaml, checkpoint) of a run folder, an MLflow run id, or a checkpoint file."""
    if checkpoint:
        ckpt = Path(checkpoint).expanduser()
        if not ckpt.is_file():
            raise BenchError(f"checkpoint {ckpt} does not exist", key="--checkpoint")
        folder = ckpt.parent
    else:
        folder = Path(run).expanduser()
        if not folder.is_dir():
            folder = _mlflow_run_dir(run, uri)
        ckpt = next((folder / n for n in ("best.pt", "last.pt") if (folder / n).is_file()), folder / "best.pt")
        if not ckpt.is_file():
            raise BenchError(f"run folder {folder} holds no best.pt or last.pt", key="--run")
    config = folder / "config.yaml"
    if not config.is_file():
        raise BenchError(f"{folder} has no config.yaml beside the checkpoint: the detector cannot be rebuilt", key="--run")
    return config, ckpt


def _mlflow_run_dir(run_id: str, uri: str) -> Path:
    try:
        import mlflow

        tags = mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).data.tags
    except Exception:  # mlflow raises many types for "no such run"
        raise BenchError(f"{run_id!r} is neither a run folder nor an MLflow run id in {uri}", key="--run") from None
    if "bench.run_dir" not in tags:
        raise BenchError(f"MLflow run {run_id} has no bench.run_dir tag; pass its folder with --run", key="--run")
    return Path(tags["bench.run_dir"])


def load_detector(config_path: Path, ckpt: Path, device: Any):
    """The run's detector with the checkpoint's weights, in eval mode on `device`."""
    from omegaconf import OmegaConf

    from bench import checkpoint
    from bench.plugins import get_plugins

    cfg = OmegaConf.load(config_path)
    cls = get_plugins().detectors.get(cfg.detector.name)
    det_cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls.config_class), cfg.detector))
    model = cls(det_cfg, _run_domains(config_path.parent, cfg))
    checkpoint.restore(checkpoint.load(ckpt), model=model)
    return model.to(device).eval()


def _run_domains(folder: Path, cfg: Any) -> list[str]:
    """The run's training domain list (its size shapes per-domain parts such as MoA-CLIP's adapters)."""
    record = folder / "run.json"
    if record.is_file():
        tags = json.loads(record.read_text()).get("tags", {})
        if tags.get("bench.domains"):
            return str(tags["bench.domains"]).split(",")
    domains = list(cfg.protocol.train.domains or [])
    return domains + (["real"] if cfg.protocol.get("real_domain") == "separate" else [])


def expand_inputs(paths: list[str]) -> list[Path]:
    found = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise BenchError(f"{path} does not exist", key="PATH")
    if not found:
        raise BenchError(f"no images or videos in {', '.join(paths)} (looked for {sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES)})",
                         key="PATH")
    return found


def predict_paths(paths: list[str], *, run: str | None = None, checkpoint: str | None = None, frames: int = 32,
                  face_detector: str = "haar", margin: float = 1.3, size: int = 256, device: str = "auto",
                  uri: str = "sqlite:///mlflow.db", batch_size: int = 32,
                  progress: bool = True) -> tuple[list[InputPrediction], list[FramePrediction]]:
    import torch
    from tqdm import tqdm

    from bench.faces import build_face_detector
    from bench.plugins import get_plugins

    inputs = expand_inputs(paths)
    config_path, ckpt = find_run(run, checkpoint, uri)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    model = load_detector(config_path, ckpt, dev)
    transform = model.eval_transform()
    faces = build_face_detector(get_plugins().face_detectors.get(face_detector), {})
    summary, rows = [], []
    for path in tqdm(inputs, desc="predict", unit="file", disable=not progress):
        crops, frame_rows = _crops(path, faces, frames, margin, size)
        if crops:
            with torch.no_grad():
                scores = torch.cat([model.predict_proba(torch.stack([transform(c) for c in crops[i:i + batch_size]]).to(dev)).float().cpu()
                                    for i in range(0, len(crops), batch_size)]).numpy()  # (N,)
            for row, score in zip((r for r in frame_rows if r.status == "ok"), scores):
                row.p_fake = float(score)
        kind = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"
        scored = [r.p_fake for r in frame_rows if r.p_fake is not None]
        unreadable = all(r.status == "decode_error" for r in frame_rows)
        note = "" if scored else ("unreadable" if unreadable else "no face found")
        summary.append(InputPrediction(str(path), kind, len(frame_rows), len(scored),
                                       float(np.mean(scored)) if scored else None, note))
        rows += frame_rows
    return summary, rows


def _crops(path: Path, detector, frames: int, margin: float, size: int) -> tuple[list[np.ndarray], list[FramePrediction]]:
    """Face crops (size, size, 3) of an image or of `frames` evenly spaced video frames, and one row per frame."""
    from bench.faces import crop_box, square_crop
    from bench.faces.track import select_faces
    from bench.video import VideoDecodeError, VideoReader, even_indices

    if path.suffix.lower() in VIDEO_SUFFIXES:
        try:
            with VideoReader(path) as reader:
                decoded = list(reader.read(even_indices(len(reader), frames)))
        except VideoDecodeError as err:
            print(f"bench: {path}: {err}", file=sys.stderr)
            return [], [FramePrediction(str(path), -1, "decode_error", None, None, None)]
        selection = "track"
    else:
        image = _read_image(path)
        if image is None:
            print(f"bench: {path}: not an image that OpenCV or PIL can read", file=sys.stderr)
            return [], [FramePrediction(str(path), 0, "decode_error", None, None, None)]
        decoded, selection = [(0, image)], "best"
    images = [None if isinstance(img, VideoDecodeError) else img for _, img in decoded]
    choices = select_faces(images, detector, selection=selection).choices
    crops, rows = [], []
    for (index, img), choice in zip(decoded, choices):
        if isinstance(img, VideoDecodeError) or choice.face is None:
            rows.append(FramePrediction(str(path), index, "decode_error" if isinstance(img, VideoDecodeError)
                                        else choice.status, None, None, None))
            continue
        crops.append(square_crop(img, crop_box(choice.face.box, margin, img.shape[1], img.shape[0]), size))
        rows.append(FramePrediction(str(path), index, "ok", None, list(choice.face.box), round(choice.face.score, 4)))
    if not crops and not all(isinstance(img, VideoDecodeError) for _, img in decoded):
        print(f"bench: {path}: no face found in {len(rows)} frame{'s' * (len(rows) != 1)} "
              f"(try another face detector: --face-detector)", file=sys.stderr)
    return crops, rows


def _read_image(path: Path) -> np.ndarray | None:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is not None:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception:  # PIL raises many types for "not an image"
        return None


def render(summary: list[InputPrediction], rows: list[FramePrediction], fmt: str, per_frame: bool) -> str:
    import pandas as pd
    from tabulate import tabulate

    if fmt == "json":
        return json.dumps({"inputs": [asdict(s) for s in summary], "frames": [asdict(r) for r in rows]}, indent=1)
    frame = pd.DataFrame([asdict(r) for r in rows] if per_frame else [asdict(s) for s in summary])
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    frame["p_fake"] = frame["p_fake"].map(lambda p: "" if p is None or pd.isna(p) else f"{p:.3f}")
    return tabulate(frame.fillna("").values.tolist(), headers=list(frame.columns), disable_numparse=True)


def run_predict(args: Any) -> int:
    summary, rows = predict_paths(args.paths, run=args.run, checkpoint=args.checkpoint, frames=args.frames,
                                  face_detector=args.face_detector, device=args.device, uri=args.uri,
                                  progress=not args.no_progress)
    print(render(summary, rows, args.format, args.per_frame))
    if not any(s.p_fake is not None for s in summary):
        raise BenchError("no face was found in any input: nothing was scored", key="PATH")
    return 0
