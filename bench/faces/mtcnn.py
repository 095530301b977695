"""MTCNN (Zhang et al., "Joint Face Detection and Alignment Using Multitask Cascaded Convolutional Networks",
IEEE SPL 2016), written here in torch: a cascade of three small CNNs over an image pyramid.

- P-Net (fully convolutional, 12x12 receptive field, stride 2) proposes boxes at every pyramid scale;
- R-Net (24x24 crops) rejects most of them and refines the rest;
- O-Net (48x48 crops) gives the final confidence, box and five landmarks (eyes, nose, mouth corners).

Faithful: the architecture, the cascade, the 0.709 pyramid factor and thresholds of the paper's released models.
Our choices: crops are resampled with `torchvision.ops.roi_align` (one batched call per stage, all frames of a batch
together, on GPU when there is one); facial evidence is the share of the five landmarks inside the box.

Weights: the converted release weights as three state dicts `pnet.pt`, `rnet.pt`, `onet.pt` (the layout of the
facenet-pytorch wheel, whose `facenet_pytorch/data/` holds them; `pip install --no-deps facenet-pytorch` puts them
on disk without its torch<2.3 pin). `weights=null` finds that installed package; `weights=/folder` reads a folder;
`weights=random` initialises randomly (tests only: it finds nothing meaningful).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms, roi_align

from bench.errors import BenchError
from bench.faces.base import Face, FaceDetector, FaceDetectorConfig

NETS = ("pnet", "rnet", "onet")


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))  # (N, 32, H', W')
        return self.conv4_1(x).softmax(1)[:, 1], self.conv4_2(x)  # (N, H', W') face probability, (N, 4, H', W')


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, W*H*C): the converted release weights expect the original framework's (W, H, C) order."""
    return x.permute(0, 3, 2, 1).reshape(len(x), -1)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x: (N, 3, 24, 24)
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten(self.prelu3(self.conv3(x)))))  # (N, 128)
        return self.dense5_1(x).softmax(1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # x: (N, 3, 48, 48)
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten(self.prelu4(self.conv4(x)))))  # (N, 256)
        return self.dense6_1(x).softmax(1)[:, 1], self.dense6_2(x), self.dense6_3(x)  # landmarks: 5 x then 5 y


@dataclass
class MTCNNConfig(FaceDetectorConfig):
    weights: str | None = None  # folder with pnet.pt, rnet.pt, onet.pt; null = the installed facenet-pytorch's; random
    min_face: int = 40  # smallest face side searched, in pixels of the (downscaled) image
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # P-, R-, O-Net confidence cut-offs
    factor: float = 0.709  # pyramid scale step
    max_side: int = 640  # frames are downscaled to this longer side first (as for Haar)
    device: str = "auto"  # auto = cuda when available


def weights_folder(cfg: MTCNNConfig) -> Path | None:
    """Where pnet.pt / rnet.pt / onet.pt are, or None for random initialisation; a one-line error when absent."""
    key = "prepare.face_detector_options.weights"
    if cfg.weights == "random":
        return None
    if cfg.weights:
        folder = Path(cfg.weights).expanduser()
    else:
        spec = importlib.util.find_spec("facenet_pytorch")  # found without importing it (its pins do not matter)
        folder = Path(next(iter(spec.submodule_search_locations))) / "data" if spec and spec.submodule_search_locations else None
    missing = [n for n in NETS if folder is None or not (folder / f"{n}.pt").is_file()]
    if missing:
        raise BenchError(f"MTCNN weights not found ({', '.join(f'{n}.pt' for n in missing)} in {folder or 'no folder'}): "
                         f"set {key}=/folder/with/pnet.pt,rnet.pt,onet.pt, or `pip install --no-deps facenet-pytorch` "
                         f"(its wheel ships them)", key=key)
    return folder


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """(K, 4) x0, y0, x1, y1 -> squares with the same centres and the longer side."""
    side = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return torch.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)


def _refine(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)  # (K, 4) = w, h, w, h
    return boxes + reg * wh


class MTCNNFaceDetector(FaceDetector):
    """MTCNN (Zhang et al. 2016); batched over frames, on GPU when there is one."""

    name = "mtcnn"
    description = "MTCNN P/R/O-Nets in torch, batched, GPU when available (weights: a local folder or facenet-pytorch)"
    config_class = MTCNNConfig

    def __init__(self, cfg: MTCNNConfig) -> None:
        super().__init__(cfg)
        self.cfg: MTCNNConfig = cfg
        folder = weights_folder(cfg)
        self.device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                                   ("cpu" if cfg.device == "auto" else cfg.device))
        self.nets = nn.ModuleDict({"pnet": PNet(), "rnet": RNet(), "onet": ONet()})
        if folder is not None:
            for n in NETS:
                self.nets[n].load_state_dict(torch.load(folder / f"{n}.pt", map_location="cpu", weights_only=True))
        self.nets.to(self.device).eval()

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_batch([image])[0]

    @torch.no_grad()
    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        out: list[list[Face]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):  # frames of one video share a size: one batch
            by_shape.setdefault(img.shape, []).append(i)
        for members in by_shape.values():
            for i, faces in zip(members, self._detect_same_size([images[i] for i in members])):
                out[i] = faces
        return out

    def _detect_same_size(self, images: list[np.ndarray]) -> list[list[Face]]:
        h, w = images[0].shape[:2]
        scale = min(1.0, self.cfg.max_side / max(h, w))
        x = torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).float()  # (N, 3, H, W)
        if scale < 1.0:
            x = nn.functional.interpolate(x, size=(round(h * scale), round(w * scale)), mode="area")
        x = (x - 127.5) / 128.0
        t1, t2, t3 = self.cfg.thresholds
        boxes, idx = self._propose(x, t1)  # (K, 4), (K,) image index
        boxes, idx, _, _ = self._stage(x, boxes, idx, "rnet", 24, t2)
        boxes, idx, scores, marks = self._stage(x, boxes, idx, "onet", 48, t3)
        keep = batched_nms(boxes, scores, idx, 0.7)
        result: list[list[Face]] = [[] for _ in images]
        for k in keep.tolist():
            b = (boxes[k] / scale).round().int().tolist()
            lm = marks[k] / scale  # (10,) 5 x then 5 y
            inside = ((lm[:5] >= b[0]) & (lm[:5] < b[2]) & (lm[5:] >= b[1]) & (lm[5:] < b[3])).float().mean()
            result[int(idx[k])].append(Face(tuple(b), float(scores[k]), float(inside)))
        return result

    def _propose(self, x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over the pyramid: candidate boxes (K, 4) in x's pixels and their image index (K,)."""
        n, _, h, w = x.shape
        m, all_boxes, all_scores, all_idx = 12.0 / self.cfg.min_face, [], [], []
        s = m
        while min(h, w) * s >= 12:
            level = nn.functional.interpolate(x, size=(int(h * s) + 1, int(w * s) + 1), mode="area")
            prob, reg = self.nets["pnet"](level)  # (N, H', W'), (N, 4, H', W')
            img, yy, xx = torch.nonzero(prob > threshold, as_tuple=True)
            cells = torch.stack([xx, yy, xx, yy], 1).float() * 2 + torch.tensor([0, 0, 12, 12], device=x.device)
            boxes = _refine(cells / s, reg[img, :, yy, xx])
            scores = prob[img, yy, xx]
            keep = batched_nms(boxes, scores, img, 0.5)
            all_boxes.append(boxes[keep]), all_scores.append(scores[keep]), all_idx.append(img[keep])
            s *= self.cfg.factor
        if not all_boxes:
            return torch.zeros(0, 4, device=x.device), torch.zeros(0, dtype=torch.long, device=x.device)
        boxes, scores, idx = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_idx)
        keep = batched_nms(boxes, scores, idx, 0.7)
        return _square(boxes[keep]), idx[keep]

    def _stage(self, x: torch.Tensor, boxes: torch.Tensor, idx: torch.Tensor, net: str, size: int,
               threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """R- or O-Net on the candidates' crops: kept boxes (refined, squared for R), image index, score, landmarks."""
        if len(boxes) == 0:
            empty = torch.zeros(0, device=x.device)
            return boxes, idx, empty, torch.zeros(0, 10, device=x.device)
        crops = roi_align(x, torch.cat([idx[:, None].float(), boxes], 1), output_size=size, aligned=True)  # (K, 3, s, s)
        outs = self.nets[net](crops)
        scores, reg = outs[0], outs[1]
        keep = scores > threshold
        boxes, idx, scores, reg = boxes[keep], idx[keep], scores[keep], reg[keep]
        wh = boxes[:, 2:] - boxes[:, :2]
        marks = (torch.cat([boxes[:, :1] + outs[2][keep][:, :5] * wh[:, :1], boxes[:, 1:2] + outs[2][keep][:, 5:] * wh[:, 1:]], 1)
                 if len(outs) == 3 else torch.zeros(len(boxes), 10, device=x.device))
        boxes = _refine(boxes, reg)
        keep = batched_nms(boxes, scores, idx, 0.7)
        boxes = boxes[keep] if net == "onet" else _square(boxes[keep])
        return boxes, idx[keep], scores[keep], marks[keep]

