"""Host-side (numpy) preprocessing ops. Images are HWC uint8 or float32 in [0, 1]."""
from __future__ import annotations

import numpy as np
from PIL import Image

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DIGITS_MEAN, DIGITS_STD = (0.3057,) * 3, (0.3235,) * 3  # of the embedded digits' train split


def to_float(img: np.ndarray) -> np.ndarray:
  """uint8 [H, W, C] -> float32 in [0, 1]; float input is returned as float32."""
  if img.dtype == np.uint8:
    return img.astype(np.float32) / 255.0
  return img.astype(np.float32)


def normalize(img: np.ndarray, mean, std) -> np.ndarray:
  return (img - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def pad_crop(img: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
  """Zero-pads by `pad` and crops back at a random offset (torch RandomCrop(padding=pad))."""
  h, w = img.shape[:2]
  padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
  y, x = rng.integers(0, 2 * pad + 1, size=2)
  return padded[y:y + h, x:x + w]


def random_flip(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  return img[:, ::-1] if rng.random() < 0.5 else img


def _resize(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
  pil = Image.fromarray(img if img.dtype == np.uint8 else (np.clip(img, 0, 1) * 255).astype(np.uint8))
  return np.asarray(pil.resize((size_hw[1], size_hw[0]), Image.BILINEAR))


def inception_crop(img: np.ndarray, size: int, rng: np.random.Generator,
                   area=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> np.ndarray:
  """torchvision RandomResizedCrop: random area/aspect crop resized to size x size."""
  h, w = img.shape[:2]
  for _ in range(10):
    target = rng.uniform(*area) * h * w
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
    cw, ch = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
    if 0 < cw <= w and 0 < ch <= h:
      y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
      return _resize(img[y:y + ch, x:x + cw], (size, size))
  s = min(h, w)  # fallback: center crop
  y, x = (h - s) // 2, (w - s) // 2
  return _resize(img[y:y + s, x:x + s], (size, size))


def resize_center_crop(img: np.ndarray, resize: int, crop: int) -> np.ndarray:
  """Resizes the shorter side to `resize`, then takes the central crop x crop."""
  h, w = img.shape[:2]
  scale = resize / min(h, w)
  nh, nw = max(crop, int(round(h * scale))), max(crop, int(round(w * scale)))
  img = _resize(img, (nh, nw))
  y, x = (nh - crop) // 2, (nw - crop) // 2
  return img[y:y + crop, x:x + crop]


def decode_image(value) -> np.ndarray:
  """Returns HWC uint8 from a decoded array or encoded bytes (PNG/JPEG)."""
  if isinstance(value, (bytes, bytearray)):
    import io
    return np.asarray(Image.open(io.BytesIO(value)).convert("RGB"))
  arr = np.asarray(value)
  if arr.ndim == 2:
    arr = arr[..., None]
  if arr.shape[-1] == 1:
    arr = np.repeat(arr, 3, axis=-1)
  return arr
