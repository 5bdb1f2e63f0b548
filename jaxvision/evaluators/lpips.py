"""Calibrated LPIPS (Zhang et al. 2018, v0.1, AlexNet) from user-supplied PyTorch weights.

    params = load_lpips_alex(alexnet="alexnet-owt-7be5be79.pth",   # torchvision AlexNet
                             lin="")             # "" = the `lpips` package's weights/v0.1/alex.pth
    d = lpips_alex(params, x, y)                 # x, y: [B, H, W, 3] in [0, 1] -> [B]
    d = lpips_alex(params, x, y, hw)             # zero-padded batches: hw [B, 2] true sizes

The distance of the `lpips` package with net='alex', version '0.1', spatial average: inputs
mapped to [-1, 1] and shifted / scaled by its ScalingLayer; the five ReLU outputs of
torchvision's AlexNet `features`; each unit-normalised over channels (x / (|x| + 1e-10)); the
squared difference weighted per channel by the calibrated 1x1 linear layers (no bias),
averaged over space and summed over layers. Neither weight file ships with this package: the
linear layers come with `pip install lpips`, the AlexNet weights from torchvision's model zoo.

Padded batches: activations outside each image's true extent are zeroed after every layer and
the spatial means run over the true extent, so a padded batch gives each image's unpadded value
(AlexNet's convs zero-pad like the padding; a max pool's valid outputs read only valid cells).
"""
from __future__ import annotations

import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

SHIFT = np.asarray([-0.030, -0.088, -0.188], np.float32)
SCALE = np.asarray([0.458, 0.448, 0.450], np.float32)
# torchvision AlexNet `features`: (index, kernel, stride, padding); a 3x3/2 max pool follows 0, 3.
ALEX_CONVS = ((0, 11, 4, 2), (3, 5, 1, 2), (6, 3, 1, 1), (8, 3, 1, 1), (10, 3, 1, 1))
POOL_AFTER = (0, 1)
ALEX_WIDTHS = (64, 192, 384, 256, 256)
_HP = jax.lax.Precision.HIGHEST


class LPIPSWeightsError(ValueError):
  """A missing or malformed LPIPS weight file (one line naming the fix)."""


def default_lin_path() -> str:
  """The installed `lpips` package's v0.1 AlexNet linear weights, or "" if not installed."""
  try:
    import lpips  # pylint: disable=import-outside-toplevel
  except Exception:  # pylint: disable=broad-except  (it imports torchvision at import time)
    import importlib.util  # pylint: disable=import-outside-toplevel
    spec = importlib.util.find_spec("lpips")
    base = os.path.dirname(spec.origin) if spec and spec.origin else ""
  else:
    base = os.path.dirname(lpips.__file__)
  p = os.path.join(base, "weights", "v0.1", "alex.pth") if base else ""
  return p if p and os.path.exists(p) else ""


def load_lpips_alex(alexnet: str | Any, lin: str | Any = "") -> dict:
  """{'convs': [(w HWIO, b)], 'lin': [w [C]]} from a torchvision AlexNet state_dict (path or
  mapping; `features.N.weight/bias`) and the lpips v0.1 linear layers (`linK.model.1.weight`,
  [1, C, 1, 1])."""
  from jaxvision.models.torch_import import _to_numpy, read_state_dict  # pylint: disable=import-outside-toplevel
  if isinstance(alexnet, (str, os.PathLike)) and not alexnet:
    raise LPIPSWeightsError("calibrated LPIPS needs torchvision's AlexNet weights: download "
                            "alexnet-owt-7be5be79.pth and pass its path")
  lin = lin if not isinstance(lin, (str, os.PathLike)) or lin else default_lin_path()
  if isinstance(lin, (str, os.PathLike)) and not lin:
    raise LPIPSWeightsError("calibrated LPIPS needs its linear layers: pip install lpips (its "
                            "weights/v0.1/alex.pth is found automatically) or pass the path")
  try:
    a, l = read_state_dict(alexnet), read_state_dict(lin)
  except FileNotFoundError as e:
    raise LPIPSWeightsError(str(e)) from None
  convs, lins = [], []
  for (i, k, _, _), c in zip(ALEX_CONVS, ALEX_WIDTHS):
    w, b = a.get(f"features.{i}.weight"), a.get(f"features.{i}.bias")
    if w is None or b is None or tuple(w.shape)[0] != c or tuple(w.shape)[2:] != (k, k):
      raise LPIPSWeightsError(f"AlexNet state_dict: features.{i}.weight/bias missing or not "
                              f"[{c}, *, {k}, {k}]; is this torchvision's alexnet?")
    convs.append((np.transpose(_to_numpy(w), (2, 3, 1, 0)), _to_numpy(b)))
  for j, c in enumerate(ALEX_WIDTHS):
    w = l.get(f"lin{j}.model.1.weight")
    if w is None or tuple(w.shape) != (1, c, 1, 1):
      raise LPIPSWeightsError(f"LPIPS linear weights: lin{j}.model.1.weight missing or not "
                              f"[1, {c}, 1, 1]; use lpips' weights/v0.1/alex.pth")
    lins.append(_to_numpy(w).reshape(c))
  return {"convs": convs, "lin": lins}


def _out(n, k, s, p):
  return (n + 2 * p - k) // s + 1


def _mask(hw, shape):
  i = jnp.arange(shape[0])[None, :, None]
  j = jnp.arange(shape[1])[None, None, :]
  return ((i < hw[:, :1, None]) & (j < hw[:, 1:, None])).astype(jnp.float32)[..., None]


def alex_features(params: dict, x: jax.Array, hw: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
  """[(relu_k [B, h, w, C], true sizes [B, 2])] for k = 1..5; x already scaled."""
  feats = []
  for li, ((_, k, s, p), (w, b)) in enumerate(zip(ALEX_CONVS, params["convs"])):
    if li in (1, 2):  # the 3x3/2 max pools after relu1 and relu2
      x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "VALID")
      hw = (hw - 3) // 2 + 1
      x = x * _mask(hw, x.shape[1:3])  # pooled cells past the true extent read valid pixels
    x = jax.lax.conv_general_dilated(x, jnp.asarray(w), (s, s), ((p, p), (p, p)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HP)
    hw = _out(hw, k, s, p)
    x = jax.nn.relu(x + jnp.asarray(b)) * _mask(hw, x.shape[1:3])
    feats.append((x, hw))
  return feats


def lpips_alex(params: dict, x: jax.Array, y: jax.Array,
               hw: Optional[jax.Array] = None) -> jax.Array:
  """LPIPS(x, y) per image, [B]; x, y [B, H, W, 3] in [0, 1]; hw [B, 2] true sizes (default
  the full H, W). Images must be at least 32 px on each side (AlexNet's last map >= 1 px)."""
  b = x.shape[0]
  if hw is None:
    hw = jnp.tile(jnp.asarray(x.shape[1:3], jnp.int32), (b, 1))
  hw = jnp.asarray(hw, jnp.int32)
  z = jnp.concatenate([x, y], 0).astype(jnp.float32) * 2.0 - 1.0
  z = (z - SHIFT) / SCALE
  hw2 = jnp.concatenate([hw, hw], 0)
  z = z * _mask(hw2, z.shape[1:3])
  total = jnp.zeros((b,), jnp.float32)
  for (f, fhw), w in zip(alex_features(params, z, hw2), params["lin"]):
    n = f / (jnp.sqrt(jnp.sum(f * f, -1, keepdims=True)) + 1e-10)
    d = jnp.sum((n[:b] - n[b:]) ** 2 * jnp.asarray(w), -1)
    area = jnp.maximum(fhw[:b, 0] * fhw[:b, 1], 1).astype(jnp.float32)
    total = total + jnp.sum(d, (1, 2)) / area
  return total
