"""Preprocessing as ops over keyed batches, written in the config (after big_vision's `pp`).

A pp string is ops joined by '|', each a registered name with Python-literal arguments::

  "to_float|pad_crop(4)|flip_lr|normalize('cifar10')"
  "random_crop(48, keys=('hr',), scale_keys={'lr': 0.25})|flip_lr(keys=('lr', 'hr'))"

Every op acts on a whole batch (a dict of arrays [B, ...]; a key whose examples differ in
shape holds a list until an op makes them equal) and is vectorised with numpy. A random op
draws once per example and applies that draw to every key it names, so pairs, trimaps and
masks stay aligned. Randomness comes from the batch's generator (a pure function of seed,
step and process), so a batch is reproducible and a resumed run sees the same data.

`parse(text)` checks names and arguments at start-up; `check(fn, keys)` (called by the loop
on a first batch) names the op and key when a record lacks what an op needs.
"""
from __future__ import annotations

import ast
import functools
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from jaxvision.core.errors import ConfigError
from jaxvision.data import ops

Batch = dict
Op = Callable[[Batch, np.random.Generator], Batch]
_OPS: dict[str, Callable[..., Op]] = {}

NORMS = {"cifar10": (ops.CIFAR_MEAN, ops.CIFAR_STD), "imagenet": (ops.IMAGENET_MEAN, ops.IMAGENET_STD),
         "digits": ((0.3057,) * 3, (0.3235,) * 3), "half": ((0.5,) * 3, (0.5,) * 3)}


class PPError(ConfigError):
  """A pp string or a batch that an op cannot use."""


def register(name: str):
  def deco(fn):
    _OPS[name] = fn
    return fn
  return deco


def names() -> list[str]:
  return sorted(_OPS)


def _stacked(x, key: str, op: str) -> np.ndarray:
  if isinstance(x, list):
    shapes = {np.shape(v) for v in x}
    if len(shapes) > 1:
      raise PPError(f"pp op '{op}': examples of '{key}' differ in shape ({sorted(shapes)[:3]}...); "
                    f"put a cropping/resizing op or pad_to_max before it")
    return np.stack(x)
  return np.asarray(x)


def _get(batch: Batch, key: str, op: str):
  if key not in batch:
    raise PPError(f"pp op '{op}' needs key '{key}', but the batch has {sorted(batch)}; fix the "
                  f"op's keys=... or the dataset")
  return batch[key]


def _size(batch: Batch) -> int:
  v = next(iter(batch.values()))
  return len(v)


# ---------------------------------------------------------------------- ops
@register("to_float")
def to_float(keys: Sequence[str] = ("image",)) -> Op:
  """uint8 -> float32 in [0, 1] (floats pass through as float32)."""
  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      x = _get(batch, k, "to_float")
      if isinstance(x, list):
        out[k] = [ops.to_float(np.asarray(v)) for v in x]
      else:
        x = np.asarray(x)
        out[k] = x.astype(np.float32) * np.float32(1 / 255) if x.dtype == np.uint8 else x.astype(np.float32)
    return out
  return fn


@register("normalize")
def normalize(mean="imagenet", std=None, keys: Sequence[str] = ("image",)) -> Op:
  """(x - mean) / std per channel; `mean` may name a preset (cifar10, imagenet, digits, half)."""
  if isinstance(mean, str):
    if mean not in NORMS:
      raise PPError(f"pp op normalize('{mean}'): unknown preset; use one of {sorted(NORMS)} "
                    f"or normalize(mean=(...), std=(...))")
    mean, std = NORMS[mean]
  m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)

  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      out[k] = (_stacked(_get(batch, k, "normalize"), k, "normalize") - m) / s
    return out
  return fn


def _crop_batch(x: np.ndarray, ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
  """Per-example crops x[b, ys[b]:ys[b]+h, xs[b]:xs[b]+w] with one gather. x: [B, H, W, ...]."""
  b = np.arange(x.shape[0])[:, None, None]
  yy = ys[:, None, None] + np.arange(h)[None, :, None]
  xx = xs[:, None, None] + np.arange(w)[None, None, :]
  return x[b, yy, xx]


@register("pad_crop")
def pad_crop(pad: int, keys: Sequence[str] = ("image",)) -> Op:
  """Zero-pads by `pad` and crops back at a random offset per example (torch RandomCrop(padding))."""
  def fn(batch, rng):
    out = dict(batch)
    n = _size(batch)
    ys, xs = rng.integers(0, 2 * pad + 1, size=(2, n))
    for k in keys:
      x = _stacked(_get(batch, k, "pad_crop"), k, "pad_crop")
      h, w = x.shape[1:3]
      widths = [(0, 0), (pad, pad), (pad, pad)] + [(0, 0)] * (x.ndim - 3)
      out[k] = _crop_batch(np.pad(x, widths), ys, xs, h, w)
    return out
  return fn


@register("flip_lr")
def flip_lr(keys: Sequence[str] = ("image",), p: float = 0.5) -> Op:
  """Mirrors each example left-right with probability p; one draw for all `keys`."""
  def fn(batch, rng):
    out = dict(batch)
    flip = rng.random(_size(batch)) < p
    for k in keys:
      x = _stacked(_get(batch, k, "flip_lr"), k, "flip_lr")
      out[k] = np.where(flip.reshape((-1,) + (1,) * (x.ndim - 1)), x[:, :, ::-1], x)
    return out
  return fn


@register("random_crop")
def random_crop(size, keys: Sequence[str] = ("image",),
                scale_keys: Optional[Mapping[str, float]] = None) -> Op:
  """One random crop of `size` (int or (h, w)) per example for `keys`, and the aligned crop
  of each key in scale_keys ({key: its resolution relative to keys}, e.g. {'lr': 0.25})."""
  h, w = (size, size) if isinstance(size, int) else tuple(size)
  scale_keys = dict(scale_keys or {})

  def fn(batch, rng):
    out = dict(batch)
    xs0 = [_get(batch, k, "random_crop") for k in keys]
    first = xs0[0]
    n = _size(batch)
    hw = [np.shape(v)[:2] for v in first] if isinstance(first, list) else [first.shape[1:3]] * n
    for k, s in scale_keys.items():  # positions on the coarsest grid keep every key aligned
      if round(1 / s) * s != 1 and s not in (1, 2, 3, 4):
        raise PPError(f"random_crop: scale {s} for '{k}' must be 1/n or n")
    step = int(max([round(1 / s) for s in scale_keys.values() if s < 1] + [1]))
    if h % step or w % step:
      raise PPError(f"random_crop({size}): size must be a multiple of {step} for scale_keys")
    ys = np.array([rng.integers(0, (H - h) // step + 1) * step if H >= h else -1 for H, _ in hw])
    xs = np.array([rng.integers(0, (W - w) // step + 1) * step if W >= w else -1 for _, W in hw])
    if (ys < 0).any() or (xs < 0).any():
      raise PPError(f"random_crop({size}): an example of '{keys[0]}' is smaller than the crop "
                    f"({min(hw)}); use a smaller size or resize first")
    for k in list(keys) + list(scale_keys):
      s = scale_keys.get(k, 1.0)
      x = _get(batch, k, "random_crop")
      ch, cw = int(round(h * s)), int(round(w * s))
      yk, xk = (ys * s).round().astype(int), (xs * s).round().astype(int)
      if isinstance(x, list):
        for i, v in enumerate(x):
          if v.shape[0] < yk[i] + ch or v.shape[1] < xk[i] + cw:
            raise PPError(f"random_crop: '{k}' example {i} has shape {v.shape[:2]}, too small "
                          f"for scale {s} of '{keys[0]}' {hw[i]}; check the pair's scale")
        out[k] = np.stack([v[yk[i]:yk[i] + ch, xk[i]:xk[i] + cw] for i, v in enumerate(x)])
      else:
        if x.shape[1] < yk.max() + ch or x.shape[2] < xk.max() + cw:
          raise PPError(f"random_crop: '{k}' has shape {x.shape[1:3]}, too small for scale {s} "
                        f"of '{keys[0]}'; check the pair's scale")
        out[k] = _crop_batch(x, yk, xk, ch, cw)
    return out
  return fn


@register("center_crop")
def center_crop(size, keys: Sequence[str] = ("image",)) -> Op:
  h, w = (size, size) if isinstance(size, int) else tuple(size)

  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      x = _get(batch, k, "center_crop")
      items = x if isinstance(x, list) else list(x)
      out[k] = np.stack([v[(v.shape[0] - h) // 2:(v.shape[0] - h) // 2 + h,
                           (v.shape[1] - w) // 2:(v.shape[1] - w) // 2 + w] for v in items])
    return out
  return fn


@register("pad_to_max")
def pad_to_max(keys: Sequence[str] = ("image",), multiple: int = 1) -> Op:
  """Zero-pads variable-size examples to the batch's largest H, W (rounded up to `multiple`);
  writes `<key>_hw` [B, 2] with the true sizes so predictions/evaluators can crop back."""
  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      x = _get(batch, k, "pad_to_max")
      items = x if isinstance(x, list) else list(x)
      H = -(-max(v.shape[0] for v in items) // multiple) * multiple
      W = -(-max(v.shape[1] for v in items) // multiple) * multiple
      out[k] = np.stack([np.pad(v, [(0, H - v.shape[0]), (0, W - v.shape[1])] +
                                [(0, 0)] * (v.ndim - 2)) for v in items])
      out[f"{k}_hw"] = np.asarray([v.shape[:2] for v in items], np.int32)
    return out
  return fn


@register("decode")
def decode(keys: Sequence[str] = ("image",)) -> Op:
  """Encoded PNG/JPEG bytes (or arrays) -> uint8 HWC RGB, per example."""
  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      out[k] = [ops.decode_image(v) for v in _get(batch, k, "decode")]
    return out
  return fn


@register("inception_crop")
def inception_crop(size: int = 224, keys: Sequence[str] = ("image",)) -> Op:
  """torchvision RandomResizedCrop per example (PIL bilinear)."""
  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      out[k] = np.stack([ops.inception_crop(np.asarray(v), size, rng)
                         for v in _get(batch, k, "inception_crop")])
    return out
  return fn


@register("resize_center_crop")
def resize_center_crop(resize: int = 256, crop: int = 224, keys: Sequence[str] = ("image",)) -> Op:
  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      out[k] = np.stack([ops.resize_center_crop(np.asarray(v), resize, crop)
                         for v in _get(batch, k, "resize_center_crop")])
    return out
  return fn


@register("keep")
def keep(*keys: str) -> Op:
  def fn(batch, rng):
    return {k: _get(batch, k, "keep") for k in keys}
  return fn


@register("rename")
def rename(**pairs: str) -> Op:
  """rename(new='old', ...)."""
  def fn(batch, rng):
    out = {k: v for k, v in batch.items() if k not in pairs.values()}
    out.update({new: _get(batch, old, "rename") for new, old in pairs.items()})
    return out
  return fn


@register("cast")
def cast(dtype: str = "int32", keys: Sequence[str] = ("label",)) -> Op:
  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      out[k] = _stacked(_get(batch, k, "cast"), k, "cast").astype(dtype)
    return out
  return fn


# ------------------------------------------------------------------- parser
def _parse_one(text: str) -> Op:
  text = text.strip()
  try:
    node = ast.parse(text, mode="eval").body
  except SyntaxError as e:
    raise PPError(f"pp op '{text}' is not valid syntax ({e.msg}); write name(arg, key=value)") from e
  if isinstance(node, ast.Name):
    name, args, kwargs = node.id, [], {}
  elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
    name = node.func.id
    try:
      args = [ast.literal_eval(a) for a in node.args]
      kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    except ValueError as e:
      raise PPError(f"pp op '{text}': arguments must be Python literals") from e
  else:
    raise PPError(f"pp op '{text}': write name or name(args)")
  if name not in _OPS:
    raise PPError(f"unknown pp op '{name}' in '{text}'; ops: {', '.join(names())}")
  try:
    return _OPS[name](*args, **kwargs)
  except TypeError as e:
    raise PPError(f"pp op '{text}': {e}") from e


@functools.lru_cache(maxsize=64)
def parse(text: str) -> Op:
  """'op1|op2(...)' -> fn(batch, rng) -> batch. '' is the identity."""
  fns = [_parse_one(p) for p in (text or "").split("|") if p.strip()]

  def fn(batch, rng):
    for f in fns:
      batch = f(batch, rng)
    return batch
  return fn


def finalize(batch: Batch) -> Batch:
  """Stacks every list-valued key (raises naming the key when shapes still differ)."""
  return {k: _stacked(v, k, "end of pp") for k, v in batch.items()}
