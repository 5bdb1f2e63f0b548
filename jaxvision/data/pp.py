"""Preprocessing as ops over keyed batches, written in the config (after big_vision's `pp`).

A pp string is ops joined by '|', each a registered name with Python-literal arguments::

  "to_float|pad_crop(4)|flip_lr|normalize('cifar10')"
  "random_crop(48, keys=('hr',), scale_keys={'lr': 0.25})|flip_lr(keys=('lr', 'hr'))"

Every op acts on a whole batch (a dict of arrays [B, ...]; a key whose examples differ in
shape holds a list until an op makes them equal) and is vectorised with numpy. A random op
draws once per example and applies that draw to every key it names, so pairs, trimaps and
masks stay aligned. Randomness comes from the batch's generator (a pure function of seed,
step and process), so a batch is reproducible and a resumed run sees the same data.

`parse(text)` checks names and arguments at start-up; `check(text, batch)` runs a pp string on
a sample batch so a record that lacks what an op needs fails at start-up, naming the op and key.
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
         "digits": (ops.DIGITS_MEAN, ops.DIGITS_STD), "half": ((0.5,) * 3, (0.5,) * 3)}


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
def _as_float(x) -> np.ndarray:
  """uint8 -> float32 in [0, 1] (x * (1/255) in float32); floats -> float32."""
  x = np.asarray(x)
  if x.dtype == np.uint8:
    y = x.astype(np.float32)
    y *= np.float32(1 / 255)
    return y
  return x.astype(np.float32)


@register("to_float")
def to_float(keys: Sequence[str] = ("image",)) -> Op:
  """uint8 -> float32 in [0, 1] (floats pass through as float32); same values for lists."""
  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      x = _get(batch, k, "to_float")
      out[k] = [_as_float(v) for v in x] if isinstance(x, list) else _as_float(x)
    return out
  return fn


@register("normalize")
def normalize(mean="imagenet", std=None, keys: Sequence[str] = ("image",)) -> Op:
  """(x - mean) / std per channel; `mean` may name a preset (cifar10, imagenet, digits, half).
  Computed as x * (1/std) + (-mean/std) in float32 (one pass, no temporaries)."""
  if isinstance(mean, str):
    if mean not in NORMS:
      raise PPError(f"pp op normalize('{mean}'): unknown preset; use one of {sorted(NORMS)} "
                    f"or normalize(mean=(...), std=(...))")
    mean, std = NORMS[mean]
  if std is None:
    raise PPError("pp op normalize(mean=...): give std=(...) too, or name a preset")
  m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
  a, b = (np.float32(1) / s).astype(np.float32), (-m / s).astype(np.float32)

  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      x = _stacked(_get(batch, k, "normalize"), k, "normalize")
      if x.shape[-1:] != a.shape and a.size != 1:
        raise PPError(f"pp op 'normalize': '{k}' has {x.shape[-1]} channels but mean/std have "
                      f"{a.size}; give per-channel mean/std that match")
      y = x.astype(np.float32)  # a fresh copy
      if a.size > 1 and y.ndim >= 2:  # rows of W*C: long inner loops instead of length-C ones
        rows = y.reshape(-1, y.shape[-2] * y.shape[-1])
        rows *= np.tile(a, y.shape[-2])
        rows += np.tile(b, y.shape[-2])
      else:
        y *= a
        y += b
      out[k] = y
    return out
  return fn


def _crop_batch(x: np.ndarray, ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
  """Per-example crops x[b, ys[b]:ys[b]+h, xs[b]:xs[b]+w] -> [B, h, w, ...], one gather over a
  strided window view (10-40x faster than a gather with [B, h, w] index arrays)."""
  from numpy.lib.stride_tricks import sliding_window_view
  x = np.asarray(x)
  win = sliding_window_view(x, (h, w), axis=(1, 2))  # [B, H-h+1, W-w+1, ..., h, w]
  out = win[np.arange(x.shape[0]), np.asarray(ys), np.asarray(xs)]  # [B, ..., h, w]
  return np.ascontiguousarray(np.moveaxis(out, (-2, -1), (1, 2)))


@register("pad_crop")
def pad_crop(pad: int, keys: Sequence[str] = ("image",)) -> Op:
  """Zero-pads by `pad` and crops back at a random offset per example (torch RandomCrop(padding));
  one offset per example for all `keys`."""
  pad = int(pad)
  if pad < 0:
    raise PPError(f"pp op pad_crop({pad}): pad must be >= 0")

  def fn(batch, rng):
    out = dict(batch)
    n = _size(batch)
    ys, xs = rng.integers(0, 2 * pad + 1, size=(2, n))
    for k in keys:
      x = _stacked(_get(batch, k, "pad_crop"), k, "pad_crop")
      if x.ndim < 3:
        raise PPError(f"pp op 'pad_crop': '{k}' has shape {x.shape}; it needs [B, H, W, ...]")
      h, w = x.shape[1:3]
      padded = np.zeros((x.shape[0], h + 2 * pad, w + 2 * pad) + x.shape[3:], x.dtype)
      padded[:, pad:pad + h, pad:pad + w] = x
      out[k] = _crop_batch(padded, ys, xs, h, w) if n else x
    return out
  return fn


def _flip(keys, p, axis: int, op: str) -> Op:
  def fn(batch, rng):
    out = dict(batch)
    flip = rng.random(_size(batch)) < p
    for k in keys:
      x = _get(batch, k, op)
      if isinstance(x, list):  # variable sizes: per example
        out[k] = [np.flip(np.asarray(v), axis - 1) if f else v for v, f in zip(x, flip)]
        continue
      x = np.asarray(x)
      if x.ndim <= axis:
        raise PPError(f"pp op '{op}': '{k}' has shape {x.shape}; it needs [B, H, W, ...]")
      y = x.copy()
      y[flip] = np.flip(x[flip], axis)
      out[k] = y
    return out
  return fn


@register("flip_lr")
def flip_lr(keys: Sequence[str] = ("image",), p: float = 0.5) -> Op:
  """Mirrors each example left-right with probability p; one draw for all `keys`."""
  return _flip(keys, p, 2, "flip_lr")


@register("flip_ud")
def flip_ud(keys: Sequence[str] = ("image",), p: float = 0.5) -> Op:
  """Mirrors each example top-bottom with probability p; one draw for all `keys`."""
  return _flip(keys, p, 1, "flip_ud")


@register("transpose")
def transpose(keys: Sequence[str] = ("image",), p: float = 0.5) -> Op:
  """Swaps H and W of each example with probability p (with flips: the 8 dihedral views, as in
  EDSR's augmentation); one draw for all `keys`, which must be square."""
  def fn(batch, rng):
    out = dict(batch)
    t = rng.random(_size(batch)) < p
    for k in keys:
      x = _stacked(_get(batch, k, "transpose"), k, "transpose")
      if x.ndim < 3 or x.shape[1] != x.shape[2]:
        raise PPError(f"pp op 'transpose': '{k}' has shape {x.shape}; it needs square "
                      f"[B, S, S, ...] (crop first)")
      y = x.copy()
      y[t] = np.swapaxes(x[t], 1, 2)
      out[k] = y
    return out
  return fn


def _hw_list(x) -> list:
  return [np.shape(v)[:2] for v in x] if isinstance(x, list) else [np.shape(x)[1:3]] * len(x)


@register("random_crop")
def random_crop(size, keys: Sequence[str] = ("image",),
                scale_keys: Optional[Mapping[str, float]] = None) -> Op:
  """One random crop of `size` (int or (h, w)) per example for `keys`, and the aligned crop
  of each key in scale_keys ({key: its resolution relative to keys}, e.g. {'lr': 0.25}).

  Every key in `keys` must have the first key's H, W per example; a scale_keys key must have
  that size times its scale (floor or ceil). Examples may differ in size (lists)."""
  h, w = (size, size) if isinstance(size, int) else tuple(size)
  scale_keys = dict(scale_keys or {})
  for k, s in scale_keys.items():
    if not (s > 0 and (abs(round(1 / s) * s - 1) < 1e-9 or float(s).is_integer())):
      raise PPError(f"pp op random_crop: scale {s} for '{k}' must be 1/n or n (e.g. 0.25 or 4)")
  # positions on the coarsest grid keep every key aligned
  step = int(max([round(1 / s) for s in scale_keys.values() if s < 1] + [1]))
  if h % step or w % step:
    raise PPError(f"pp op random_crop({size}): size must be a multiple of {step} for scale_keys")

  def fn(batch, rng):
    out = dict(batch)
    first = _get(batch, keys[0], "random_crop")
    hw = np.asarray(_hw_list(first), np.int64).reshape(-1, 2)
    n = len(hw)
    for k in list(keys[1:]) + list(scale_keys):
      s = scale_keys.get(k, 1.0)
      khw = np.asarray(_hw_list(_get(batch, k, "random_crop")), np.int64).reshape(-1, 2)
      if len(khw) != n or (np.abs(khw - hw * s) >= 1).any():
        i = int(np.argmax((np.abs(khw - hw * s) >= 1).any(1))) if len(khw) == n else 0
        raise PPError(f"pp op random_crop: '{k}' example {i} is {tuple(khw[i].tolist())} but "
                      f"'{keys[0]}' is {tuple(hw[i].tolist())} at scale {s}; jointly cropped keys "
                      f"must match (fix the dataset, or crop them separately)")
    hi_y, hi_x = (hw[:, 0] - h) // step + 1, (hw[:, 1] - w) // step + 1
    if n and (hi_y.min() < 1 or hi_x.min() < 1):
      i = int(np.argmin(np.minimum(hi_y, hi_x)))
      raise PPError(f"pp op random_crop({size}): example {i} of '{keys[0]}' is "
                    f"{tuple(hw[i].tolist())}, smaller than the crop; use a smaller size or "
                    f"resize first")
    ys = rng.integers(0, np.maximum(hi_y, 1)) * step  # one vectorised draw per axis
    xs = rng.integers(0, np.maximum(hi_x, 1)) * step
    for k in list(keys) + list(scale_keys):
      s = scale_keys.get(k, 1.0)
      x = _get(batch, k, "random_crop")
      ch, cw = int(round(h * s)), int(round(w * s))
      yk, xk = (ys * s).round().astype(np.int64), (xs * s).round().astype(np.int64)
      if isinstance(x, list):
        out[k] = np.stack([np.asarray(v)[yk[i]:yk[i] + ch, xk[i]:xk[i] + cw]
                           for i, v in enumerate(x)])
      else:
        out[k] = _crop_batch(np.asarray(x), yk, xk, ch, cw)
    return out
  return fn


@register("center_crop")
def center_crop(size, keys: Sequence[str] = ("image",)) -> Op:
  """The central (h, w) of every example (variable sizes allowed)."""
  h, w = (size, size) if isinstance(size, int) else tuple(size)

  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      x = _get(batch, k, "center_crop")
      for i, (H, W) in enumerate(_hw_list(x)):
        if H < h or W < w:
          raise PPError(f"pp op center_crop({size}): example {i} of '{k}' is {(H, W)}, smaller "
                        f"than the crop; use a smaller size or pad first")
      if isinstance(x, list):
        out[k] = np.stack([np.asarray(v)[(v.shape[0] - h) // 2:(v.shape[0] - h) // 2 + h,
                                         (v.shape[1] - w) // 2:(v.shape[1] - w) // 2 + w]
                           for v in x])
      else:
        x = np.asarray(x)
        y0, x0 = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
        out[k] = x[:, y0:y0 + h, x0:x0 + w]
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


def _per_example(op: str, keys: Sequence[str], one) -> Op:
  """An op that maps `one(example, rng)` over the examples of each key and stacks them."""
  def fn(batch, rng):
    out = dict(batch)
    for k in keys:
      out[k] = np.stack([one(np.asarray(v), rng) for v in _get(batch, k, op)])
    return out
  return fn


@register("inception_crop")
def inception_crop(size: int = 224, keys: Sequence[str] = ("image",)) -> Op:
  """torchvision RandomResizedCrop per example (PIL bilinear)."""
  return _per_example("inception_crop", keys, lambda v, rng: ops.inception_crop(v, size, rng))


@register("resize_center_crop")
def resize_center_crop(resize: int = 256, crop: int = 224, keys: Sequence[str] = ("image",)) -> Op:
  return _per_example("resize_center_crop", keys,
                      lambda v, rng: ops.resize_center_crop(v, resize, crop))


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


def check(text: str, batch: Batch, seed: int = 0) -> Batch:
  """Parses `text` and runs it on a small sample batch (e.g. two records) at start-up, so a
  missing key or a shape mismatch stops the run before training with a one-line PPError."""
  return finalize(parse(text)(dict(batch), np.random.default_rng(seed)))


# ------------------------------------------------------ on device (jnp, inside jit)
def device_pad_crop_flip(x, key, pad: int = 4, flip: bool = True, mean=None, std=None):
  """The CIFAR augmentation on device, for use inside a jitted step with the step's key:
  zero-pad by `pad` + random crop back (per example), random left-right flip, then to float
  and (x/255 - mean)/std when mean/std are given (a preset name or per-channel tuples).

  x: uint8 or float [B, H, W, C]. Returns float32 [B, H, W, C] equal to the host ops
  `pad_crop(pad)|flip_lr|to_float|normalize(...)` for the same offsets and flips (the draws
  come from `key`, not from a numpy generator). Two take_along_axis gathers, no per-example
  slices: ~4x faster than a vmapped dynamic_slice on CPU.
  """
  import jax
  import jax.numpy as jnp
  b, h, w, c = x.shape
  k1, k2 = jax.random.split(key)
  off = jax.random.randint(k1, (b, 2), 0, 2 * pad + 1)
  y = x.astype(jnp.float32) * (1 / 255) if x.dtype == jnp.uint8 else x.astype(jnp.float32)
  fill = jnp.zeros((c,), jnp.float32)
  if mean is not None:
    if isinstance(mean, str):
      if mean not in NORMS:
        raise PPError(f"device_pad_crop_flip: unknown preset '{mean}'; use one of {sorted(NORMS)}")
      mean, std = NORMS[mean]
    m, s = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
    y, fill = (y - m) / s, -m / s  # zero padding, normalised
  y = jnp.pad(y - fill, ((0, 0), (pad, pad), (pad, pad), (0, 0))) + fill
  iy = off[:, :1] + jnp.arange(h)[None]
  ix = off[:, 1:] + jnp.arange(w)[None]
  if flip:
    ix = jnp.where(jax.random.bernoulli(k2, 0.5, (b, 1)), ix[:, ::-1], ix)
  y = jnp.take_along_axis(y, iy[:, :, None, None], axis=1)
  return jnp.take_along_axis(y, ix[:, None, :, None], axis=2)
