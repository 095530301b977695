"""Image transforms shared by detectors: numpy (H, W, 3) uint8 -> normalised (3, S, S) float tensor.

Built on torchvision.transforms.v2. Augmentations are configured per detector (`detector.augment.*`); the
defaults here are "none", so a detector that does not ask for augmentation trains on resized images only.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from bench.detector_config import AugmentConfig


class GaussianBlur(v2.GaussianBlur):
    """torchvision's Gaussian blur (the same kernel, sigma drawn the same way, reflect-101 borders) computed by
    OpenCV on uint8 pixels: 0.1 ms instead of 7 ms for a 224x224 image on one core (benchmarks/loader_speed.py),
    at most one grey level apart (OpenCV rounds in fixed point)."""

    def transform(self, inpt, params):
        if not (isinstance(inpt, torch.Tensor) and inpt.dtype == torch.uint8 and inpt.ndim == 3):
            return super().transform(inpt, params)
        import cv2

        sigma = params["sigma"]
        hwc = np.ascontiguousarray(inpt.permute(1, 2, 0).numpy())  # (H, W, 3)
        out = cv2.GaussianBlur(hwc, tuple(self.kernel_size), sigmaX=sigma[0], sigmaY=sigma[1])
        chw = torch.from_numpy(out).permute(2, 0, 1).contiguous()  # (3, H, W)
        return tv_tensors.wrap(chw, like=inpt) if isinstance(inpt, tv_tensors.Image) else chw


def build_transform(size: int, mean: tuple[float, ...], std: tuple[float, ...], aug: AugmentConfig | None) -> v2.Compose:
    """Resize to (size, size), optionally augment, scale to [0, 1] and normalise."""
    ops: list[v2.Transform] = [v2.ToImage(), v2.Resize((size, size), antialias=True)]
    if aug is not None and aug.enabled:
        if aug.hflip > 0:
            ops.append(v2.RandomHorizontalFlip(p=aug.hflip))
        if aug.blur > 0:
            ops.append(v2.RandomApply([GaussianBlur(kernel_size=5, sigma=tuple(aug.blur_sigma))], p=aug.blur))
        if aug.color > 0:
            jitter = v2.RandomChoice([v2.ColorJitter(brightness=0.2, contrast=0.2), v2.ColorJitter(hue=0.05, saturation=0.2)])
            ops.append(v2.RandomApply([jitter], p=aug.color))
        if aug.jpeg > 0:
            ops.append(v2.RandomApply([v2.JPEG(quality=tuple(aug.jpeg_quality))], p=aug.jpeg))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
    return v2.Compose(ops)


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """Validate/convert an image array to (H, W, 3) uint8 (greyscale is repeated, alpha dropped)."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image
