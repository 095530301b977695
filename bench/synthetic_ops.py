"""Pixel-level building blocks of the embedded synthetic benchmark (`bench.datasets.synthetic`).

Pure numpy/OpenCV functions on float32 (H, W, 3) images in [0, 1]:
  * sources of "real" images: procedural face-like scenes with natural-image statistics, and crops of the
    photographs shipped inside scikit-image (no download);
  * the five forgery families. Each takes (image, rng, strength) and returns the forged image and its
    manipulation mask (H, W) in [0, 1]: exactly zero where no pixel was touched (Face X-ray's blending mask for
    the local forgeries, all ones for the global ones).
What each family models, and the papers behind it, is documented in `bench.datasets.synthetic`.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

Rng = np.random.Generator

# ---- generic helpers ---------------------------------------------------------------------------------------


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """One JPEG round trip (4:2:0 chroma, libjpeg's standard tables), grid anchored at the top-left pixel."""
    u8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])  # OpenCV wants BGR
    if not ok:
        raise RuntimeError(f"OpenCV could not JPEG-encode a {u8.shape} image")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT)


def power_law_noise(rng: Rng, h: int, w: int, beta: float) -> np.ndarray:
    """(H, W) zero-mean, unit-variance noise whose amplitude spectrum falls as 1/f^beta (natural images: ~1)."""
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    f[0, 0] = 1.0
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f**beta
    spec[0, 0] = 0.0
    noise = np.fft.irfft2(spec, s=(h, w))
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def ellipse_coords(h: int, w: int, cy: float, cx: float, ry: float, rx: float,
                   angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in an ellipse's own frame (centre and radii in pixels): the boundary is hypot(u, v) = 1."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    return (c * dx + s * dy) / rx, (-s * dx + c * dy) / ry


def ramp(rho: np.ndarray, edge: float) -> np.ndarray:
    """Soft inside-indicator of hypot(u, v) = rho < 1: 1 deep inside, smoothstep over `edge`, exactly 0 at rho >= 1."""
    t = np.clip((1.0 - rho) / edge, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def face_mask(rng: Rng, h: int, w: int, edge: float) -> np.ndarray:
    """(H, W) soft ellipse over the central (face) region, as the convex-hull masks of Face X-ray / SBI."""
    cy, cx = (0.5 + rng.uniform(-0.08, 0.08, 2)) * np.array([h, w])
    u, v = ellipse_coords(h, w, cy, cx, rng.uniform(0.3, 0.45) * h, rng.uniform(0.25, 0.38) * w, rng.uniform(-0.3, 0.3))
    return ramp(np.hypot(u, v), edge)


def resample(img: np.ndarray, factor: float) -> np.ndarray:
    """Down- then up-scale by `factor` (< 1) with bilinear interpolation: the resize of a pasted face."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# ---- "real" images ------------------------------------------------------------------------------------------


def procedural_scene(rng: Rng, size: int) -> np.ndarray:
    """A face-like scene: 1/f textured, smoothly shaded background; a shaded skin ellipse with hair, eyes, mouth."""
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    texture = power_law_noise(rng, size, size, rng.uniform(0.9, 1.4))[..., None] * rng.uniform(0.4, 1.0, 3)
    bg = rng.uniform(0.15, 0.85, 3) + 0.12 * texture
    bg += 0.03 * np.stack([power_law_noise(rng, size, size, 1.0) for _ in range(3)], -1)
    theta = rng.uniform(0, 2 * np.pi)
    img = bg * (1 + 0.3 * (np.cos(theta) * (xx - 0.5) + np.sin(theta) * (yy - 0.5)))[..., None]

    cy, cx = (0.5 + rng.uniform(-0.06, 0.06, 2)) * size
    ry, rx, angle = rng.uniform(0.3, 0.38) * size, rng.uniform(0.22, 0.28) * size, rng.uniform(-0.25, 0.25)
    # hair: a slightly larger ellipse shifted up, drawn under the face
    hu, hv = ellipse_coords(size, size, cy - 0.12 * ry, cx, ry * 1.05, rx * 1.12, angle)
    hair_colour = rng.uniform(0.05, 0.5) * rng.uniform(0.7, 1.0, 3)
    hair_tex = hair_colour * (1 + 0.25 * power_law_noise(rng, size, size, 0.8)[..., None])
    img = _paint(img, ramp(np.hypot(hu, hv), 0.08), hair_tex)
    # face: Lambertian shading of an ellipsoid lit from a random direction, plus a fine 1/f skin texture
    u, v = ellipse_coords(size, size, cy, cx, ry, rx, angle)
    rho = np.hypot(u, v)
    normal = np.stack([u, v, np.sqrt(np.clip(1 - rho**2, 0, 1))], -1)
    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.2), 1.0], np.float32)
    shade = 0.55 + 0.45 * np.clip(normal @ (light / np.linalg.norm(light)), 0, 1)
    tone = rng.uniform(0.45, 0.9)
    skin = tone * np.array([1.0, rng.uniform(0.7, 0.85), rng.uniform(0.55, 0.75)], np.float32)
    skin_tex = skin * shade[..., None] * (1 + 0.04 * power_law_noise(rng, size, size, 1.0)[..., None])
    img = _paint(img, ramp(rho, 0.06), skin_tex)
    eye = rng.uniform(0.05, 0.3) * np.ones(3, np.float32)
    for side in (-1, 1):
        img = _paint(img, ramp(np.hypot((u - side * 0.38) / 0.15, (v + 0.18) / 0.08), 0.4), eye)
        img = _paint(img, ramp(np.hypot((u - side * 0.38) / 0.2, (v + 0.38) / 0.04), 0.5), hair_colour)  # brow
    lips = skin * np.array([0.8, 0.5, 0.5], np.float32)
    img = _paint(img, ramp(np.hypot(u / 0.3, (v - 0.52) / 0.07), 0.5), lips)
    img = _paint(img, ramp(np.hypot(u / 0.07, (v - 0.15) / 0.2), 0.7), skin * 0.8)  # nose shadow
    return np.clip(blur(img.astype(np.float32), 0.5), 0, 1)  # a little optical blur, like a camera


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return img * (1 - mask[..., None]) + colour * mask[..., None]


COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
GREY_PHOTOS = ("camera", "coins", "grass", "gravel", "brick", "moon")  # tinted at random
PHOTOS = COLOUR_PHOTOS + GREY_PHOTOS
# Each split crops a disjoint part of every photograph (fractions y0, y1, x0, x1), so no pixel is shared across splits.
SPLIT_REGIONS = {"train": (0.0, 1.0, 0.0, 0.6), "val": (0.0, 0.5, 0.6, 1.0), "test": (0.5, 1.0, 0.6, 1.0)}


@functools.cache
def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return img[..., :3].astype(np.float32) / 255.0


def photo_crop(rng: Rng, size: int, split: str) -> np.ndarray:
    """A random square crop of a scikit-image photograph (split-disjoint region), rescaled, flipped, recoloured."""
    name = PHOTOS[rng.integers(len(PHOTOS))]
    photo = _photo(name)
    h, w = photo.shape[:2]
    fy0, fy1, fx0, fx1 = SPLIT_REGIONS[split]
    y0, y1, x0, x1 = int(fy0 * h), int(fy1 * h), int(fx0 * w), int(fx1 * w)
    largest = min(y1 - y0, x1 - x0)
    side = int(np.exp(rng.uniform(np.log(min(size, largest)), np.log(largest))))  # log-uniform scale
    top, left = rng.integers(y0, y1 - side + 1), rng.integers(x0, x1 - side + 1)
    crop = cv2.resize(photo[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gains = rng.uniform(0.7, 1.1, 3) if name in GREY_PHOTOS else rng.uniform(0.85, 1.15, 3)
    return np.clip(crop ** rng.uniform(0.8, 1.25) * gains, 0, 1).astype(np.float32)


# ---- forgery families -----------------------------------------------------------------------------------------


def blend(img: np.ndarray, rng: Rng, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Self-blending: a colour-shifted, resized (softer), slightly moved copy pasted under a soft face mask."""
    h, w = img.shape[:2]
    mask = face_mask(rng, h, w, edge=rng.uniform(0.05, 0.3))
    c = 0.2 * strength
    other = img * rng.uniform(1 - c, 1 + c, 3) + rng.uniform(-c / 2, c / 2, 3)
    other = resample(other, 1 / (1 + strength * rng.uniform(0.5, 1.0)))
    affine = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1 + rng.uniform(-0.05, 0.05) * strength)
    affine[:, 2] += rng.uniform(-2, 2, 2) * strength
    other = cv2.warpAffine(other.astype(np.float32), affine, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    out = img * (1 - mask[..., None]) + other * mask[..., None]
    return np.clip(out, 0, 1).astype(np.float32), mask


def gan_upsample(img: np.ndarray, rng: Rng, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Re-render from half resolution with a stride-2 transposed convolution whose phases have unequal gain
    (checkerboard), keeping only part of the lost detail: periodic spectral peaks plus a high-frequency deficit."""
    h, w = img.shape[:2]
    low = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)  # (H/2, W/2, 3)
    # Kernel [a, b, a] after zero insertion: even outputs get gain b, odd ones 2a; b = 2a = 1 is linear interpolation.
    uneven = 0.03 * strength * rng.uniform(0.5, 1.0) * rng.choice([-1.0, 1.0])
    k1 = np.array([0.5 * (1 - uneven), 1 + uneven, 0.5 * (1 - uneven)], np.float32)
    zeros = np.zeros((h, w, 3), np.float32)
    zeros[::2, ::2] = low
    up = cv2.sepFilter2D(zeros, -1, k1, k1, borderType=cv2.BORDER_REFLECT)  # (H, W, 3)
    smooth = cv2.sepFilter2D(zeros, -1, np.array([0.5, 1, 0.5], np.float32), np.array([0.5, 1, 0.5], np.float32),
                             borderType=cv2.BORDER_REFLECT)
    detail = (1 - 0.25 * strength * rng.uniform(0.5, 1.0)) * (img - smooth)  # the generator re-synthesises some detail
    return np.clip(up + detail, 0, 1).astype(np.float32), np.ones((h, w), np.float32)


def diffusion(img: np.ndarray, rng: Rng, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the low band of the spectrum; replace the high band with power-law noise of somewhat lower energy."""
    h, w = img.shape[:2]
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])  # cycles / pixel, up to ~0.71
    cutoff = (0.35 - 0.12 * strength) * rng.uniform(0.85, 1.15)
    low = np.clip((cutoff * 1.3 - f) / (0.6 * cutoff), 0, 1)[..., None]  # 1 below 0.7 cutoff, 0 above 1.3 cutoff
    spec = np.fft.rfft2(img, axes=(0, 1))  # (H, W/2+1, 3)
    noise = np.fft.rfft2(power_law_noise(rng, h, w, rng.uniform(0.6, 1.2)))[..., None]  # one field for all channels
    high_energy = np.sqrt((np.abs(spec * (1 - low)) ** 2).sum((0, 1)))  # per channel
    noise_energy = np.sqrt((np.abs(noise * (1 - low)) ** 2).sum((0, 1))) + 1e-12
    # generators under-produce the high band: re-synthesised with less energy than the frame had
    gain = np.exp(-strength * rng.uniform(0.18, 0.8)) * high_energy / noise_energy
    out = np.fft.irfft2(spec * low + noise * gain * (1 - low), s=(h, w), axes=(0, 1))
    return np.clip(out, 0, 1).astype(np.float32), np.ones((h, w), np.float32)


def warp(img: np.ndarray, rng: Rng, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Magnify the face region and bend it with a smooth random field that fades to nothing at the mask's edge,
    sampling a lower-resolution render with bilinear interpolation (blur and periodic resampling correlations)."""
    h, w = img.shape[:2]
    mask = face_mask(rng, h, w, edge=0.5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    zoom = 1 + 0.3 * strength * rng.uniform(0.5, 1.0)
    field = np.stack([blur(rng.standard_normal((h, w)).astype(np.float32), h / 10) for _ in range(2)], -1)
    field *= 3 * strength / (np.abs(field).max() + 1e-12)  # (H, W, 2), up to 3 px at strength 1
    dx = ((xx - w / 2) * (1 / zoom - 1) + field[..., 0]) * mask  # zero outside the mask
    dy = ((yy - h / 2) * (1 / zoom - 1) + field[..., 1]) * mask
    render = resample(img, 1 / (1 + strength * rng.uniform(0.5, 1.0)))
    out = cv2.remap(render, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    soft = np.clip(2 * mask, 0, 1)[..., None]  # the render is pasted back over the mask's inner half
    return np.clip(img * (1 - soft) + out * soft, 0, 1).astype(np.float32), (mask > 0).astype(np.float32)


def double_jpeg(img: np.ndarray, rng: Rng, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """A first, lower-quality JPEG whose 8x8 grid is shifted against the image's (the final save is the second)."""
    h, w = img.shape[:2]
    quality = int(np.clip(round(rng.uniform(90, 98) - 55 * strength), 10, 100))
    dy, dx = rng.integers(0, 8, 2)
    padded = np.pad(img, ((8, 0), (8, 0), (0, 0)), mode="reflect")[8 - dy:, 8 - dx:]  # grid origin dy, dx up-left
    return jpeg(padded, quality)[dy:, dx:], np.ones((h, w), np.float32)


FAMILIES = {"blend": blend, "gan_upsample": gan_upsample, "diffusion": diffusion, "warp": warp,
            "double_jpeg": double_jpeg}  # domain name -> forgery; the order is the order of `domains()`
