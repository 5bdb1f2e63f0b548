"""One-shot channel pruning of a prototype generator to a MACs budget (spec §2.2).

    res = search_threshold(proto, target_macs=3.0e9, mode="scale", tolerance=0.1e9)
    student = rebuild(proto, res.widths, rngs=nnx.Rngs(1))   # re-initialised (GCC default)

Importance per output channel: mode 'scale' = BN gamma, mode 'norm' = L1 norm of the conv
(or conv-transpose) filter. Channels with score > tau are kept; tau is found by binary search
over [min score, upper] so that the pruned generator's MACs (thop_conv convention, the
papers' count) land within `tolerance` of the target. `upper` keeps >= 1 channel in every
layer that may not vanish (GCC `max_min_bn_scale` / `max_min_conv_norm`).

Supported generators and what is scored (`importance_groups`):
- pix2pix_unet: scale: BN gamma of down levels 2..N-1 and up levels N..2 (d_1 and d_N keep
  their width); norm: every down conv and up conv-transpose except the output layer. Levels
  >= max(5, N-2) may drop to 0 channels; such a level is removed with every deeper level.
- mobile_resnet_generator / resnet_generator (norm only; InstanceNorm has no gamma): stem,
  downs, block inner widths, ups; the residual width scores the mean L1 over down2 and every
  block's last conv. Depthwise convs and the RGB output conv are never pruned.
- sagan_generator (scale): the 4 BN layers. srresnet (scale): every block's inner BN.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision import flops
from jaxvision.models import gan

MODES = ("scale", "norm")


@dataclasses.dataclass(frozen=True)
class ScoreGroup:
  """Scores of one prunable width: its count goes to widths[i] for i in `entries`."""
  name: str
  entries: tuple[int, ...]
  scores: np.ndarray
  can_be_zero: bool = False


@dataclasses.dataclass(frozen=True)
class PruneResult:
  threshold: float
  widths: list[int]
  macs: int
  target_macs: float
  full_macs: int
  iterations: int


def _np(v) -> np.ndarray:
  return np.asarray(jnp.asarray(v[...], jnp.float32))


def conv_l1(layer) -> np.ndarray:
  """L1 norm per output channel of an nnx.Conv ((kh, kw, cin, cout) kernel) or of a
  `gan.conv_transpose` ((kh, kw, cout, cin) kernel)."""
  k = np.abs(_np(layer.kernel))
  if isinstance(layer, nnx.ConvTranspose):
    return k.sum(axis=(0, 1, 3))
  return k.sum(axis=(0, 1, 2))


def _unet_groups(m: gan.UnetGenerator, mode: str) -> list[ScoreGroup]:
  n = m.num_downs
  zero_from = max(5, n - 2)
  lv = {l.level: l for l in m.levels}
  groups = []
  for i in range(1, m.depth + 1):      # down widths d_i -> entry i-1
    l = lv[i]
    if mode == "scale":
      if not l.has_down_bn:
        continue
      s = _np(l.down_bn.scale)
    else:
      s = conv_l1(l.down_conv)
    groups.append(ScoreGroup(f"level{i}/down", (i - 1,), s, i >= zero_from))
  for i in range(m.depth, 1, -1):      # up widths u_i -> entry 2n-i
    l = lv[i]
    s = _np(l.up_bn.scale) if mode == "scale" else conv_l1(l.up_conv)
    groups.append(ScoreGroup(f"level{i}/up", (2 * n - i,), s, i >= zero_from))
  return groups


def _resnet_groups(m, mode: str) -> list[ScoreGroup]:
  if mode != "norm":
    raise ValueError(f"{type(m).__name__} uses InstanceNorm without affine (no BN gamma); "
                     f"prune it with mode='norm'.")
  mobile = isinstance(m, gan.MobileResnetGenerator)
  nb = m.n_blocks
  blocks = dict(zip(m.block_index, m.blocks))
  res_layers = [m.down2] + [(b.pw2 if mobile else b.conv2) for b in blocks.values()]
  res_score = np.mean([conv_l1(l) for l in res_layers], axis=0)
  res_entries = (2,) + (tuple(4 + 2 * b for b in range(nb)) if mobile else ())
  groups = [ScoreGroup("stem", (0,), conv_l1(m.stem)),
            ScoreGroup("down1", (1,), conv_l1(m.down1)),
            ScoreGroup("residual", res_entries, res_score)]
  for b, blk in blocks.items():
    groups.append(ScoreGroup(f"block{b}/inner", (3 + 2 * b if mobile else 3 + b,),
                             conv_l1(blk.pw1 if mobile else blk.conv1)))
  k = len(m.widths)
  groups += [ScoreGroup("up1", (k - 2,), conv_l1(m.up1)), ScoreGroup("up2", (k - 1,),
                                                                       conv_l1(m.up2))]
  return groups


def _bn_groups(m, mode: str) -> list[ScoreGroup]:
  if mode != "scale":
    raise ValueError(f"{type(m).__name__} is pruned on BN gammas; use mode='scale'.")
  if isinstance(m, gan.SAGANGenerator):
    return [ScoreGroup(f"l{k + 1}", (k,), _np(bn.scale)) for k, bn in enumerate(m.bns)]
  return [ScoreGroup(f"block{b}/inner", (1 + b,), _np(blk.bn1.scale))
          for b, blk in enumerate(m.blocks)]


SUPPORTED = {gan.UnetGenerator: _unet_groups, gan.MobileResnetGenerator: _resnet_groups,
             gan.ResnetGenerator: _resnet_groups, gan.SAGANGenerator: _bn_groups,
             gan.SRResNet: _bn_groups}


def importance_groups(model: nnx.Module, mode: str) -> list[ScoreGroup]:
  """Score groups of a supported generator (see module docstring)."""
  if mode not in MODES:
    raise ValueError(f"pruning mode must be one of {MODES}, got {mode!r}.")
  fn = SUPPORTED.get(type(model))
  if fn is None:
    names = sorted(c.__name__ for c in SUPPORTED)
    raise ValueError(f"GCC pruning does not support {type(model).__name__}; supported "
                     f"generators: {names}.")
  return fn(model, mode)


def normalize_widths(model: nnx.Module, widths: Sequence[int]) -> list[int]:
  """U-Net: a level with a 0 width is removed with every deeper level (zeros them)."""
  w = [int(v) for v in widths]
  if isinstance(model, gan.UnetGenerator):
    n = model.num_downs
    for i in range(2, n + 1):
      if w[i - 1] == 0 or w[2 * n - i] == 0:
        for j in range(i, n + 1):
          w[j - 1] = 0
          w[2 * n - j] = 0
        break
  return w


def widths_at_threshold(model: nnx.Module, groups: Sequence[ScoreGroup], tau: float) -> list[int]:
  """The model's widths with every group's entries set to #(scores > tau), at least 1 for a
  group that may not vanish (tau = upper with tied scores would otherwise empty it)."""
  w = list(model.widths)
  for g in groups:
    k = max(int(np.sum(g.scores > tau)), 0 if g.can_be_zero else 1)
    for e in g.entries:
      w[e] = k
  return normalize_widths(model, w)


def floor_widths(model: nnx.Module, groups: Sequence[ScoreGroup]) -> list[int]:
  """Smallest structure the search may reach: 1 channel per layer (0 where allowed)."""
  w = list(model.widths)
  for g in groups:
    for e in g.entries:
      w[e] = 0 if g.can_be_zero else 1
  return normalize_widths(model, w)


def threshold_range(groups: Sequence[ScoreGroup]) -> tuple[float, float]:
  """(overall min score, upper) with upper = min over non-vanishing groups of their max
  score, capped by the largest score of the groups that may vanish (GCC)."""
  lo = min(float(g.scores.min()) for g in groups)
  keep = [float(g.scores.max()) for g in groups if not g.can_be_zero]
  free = [float(g.scores.max()) for g in groups if g.can_be_zero]
  hi = min(keep) if keep else max(free)
  if free:
    hi = min(hi, max(free))
  return lo, hi


def count_macs(model: nnx.Module, widths: Sequence[int] | None = None,
               input_shape: Sequence[int] | None = None, convention: str = "thop_conv",
               exclude_spectral_norm: bool = False) -> int:
  """MACs (thop_conv by default) of `model`, or of its architecture with other `widths`.

  exclude_spectral_norm: leave out the convs wrapped by `gan.SpectralNorm` (the official
  thop count missed them: GCC's SAGAN budget 0.016 G is in that count, spec §2.2)."""
  m = model if widths is None else gan.rebuild(model, widths, abstract=True)
  res = flops.count(m, input_shape=input_shape or model.default_input_shape,
                    convention=convention)
  if not exclude_spectral_norm:
    return int(res["flops"])
  return int(sum(l["flops"] for l in res["layers"] if "sn_layer" not in l["name"].split("/")))


def search_threshold(model: nnx.Module, target_macs: float, *, mode: str, tolerance: float,
                     input_shape: Sequence[int] | None = None, max_iter: int = 64,
                     exclude_spectral_norm: bool = False) -> PruneResult:
  """Binary search of the global threshold tau (GCC `binarysearch_threshold`).

  Returns the first tau whose pruned MACs are within `tolerance` of `target_macs`. Raises a
  one-line ValueError at once when the budget is below what one channel per layer allows or
  above the unpruned model, and when no tau lands within the tolerance.
  """
  groups = importance_groups(model, mode)
  cache: dict[tuple, int] = {}

  def macs(w):
    key = tuple(w)
    if key not in cache:
      cache[key] = count_macs(model, w, input_shape,
                              exclude_spectral_norm=exclude_spectral_norm)
    return cache[key]

  full = macs(model.widths)
  floor = macs(floor_widths(model, groups))
  if target_macs < floor - tolerance:
    raise ValueError(f"MACs budget {target_macs / 1e9:.4g} G is below the {floor / 1e9:.4g} G "
                     f"that one channel per layer allows; raise target_macs.")
  if target_macs > full + tolerance:
    raise ValueError(f"MACs budget {target_macs / 1e9:.4g} G is above the unpruned "
                     f"{full / 1e9:.4g} G; lower target_macs (or use a wider prototype).")
  lo, hi = threshold_range(groups)
  best = None
  for it in range(1, max_iter + 1):
    mid = (lo + hi) / 2
    w = widths_at_threshold(model, groups, mid)
    m = macs(w)
    if best is None or abs(m - target_macs) < abs(best[1] - target_macs):
      best = (mid, m)
    if abs(target_macs - m) <= tolerance:
      return PruneResult(float(mid), w, m, float(target_macs), full, it)
    if target_macs - m > tolerance:
      hi = mid
    else:
      lo = mid
    if hi <= lo:
      break
  raise ValueError(f"no threshold gives MACs within {tolerance / 1e9:.4g} G of "
                   f"{target_macs / 1e9:.4g} G (closest {best[1] / 1e9:.4g} G); raise tolerance.")


def prune_generator(model: nnx.Module, target_macs: float, *, mode: str, tolerance: float,
                    rngs: nnx.Rngs, input_shape: Sequence[int] | None = None):
  """search_threshold, then a freshly initialised generator with the pruned widths."""
  res = search_threshold(model, target_macs, mode=mode, tolerance=tolerance,
                         input_shape=input_shape)
  return gan.rebuild(model, res.widths, rngs=rngs), res


# ------------------------------------------------------------ sparsity pre-training (stage A)


def _key_str(path) -> str:
  parts = []
  for k in path:
    v = getattr(k, "key", getattr(k, "idx", getattr(k, "name", None)))
    parts.append(str(v))
  if parts and parts[-1] == "value":
    parts = parts[:-1]
  return "/".join(parts)


def l1_targets(model: nnx.Module, mode: str, multipliers: dict | None = None) -> dict[str, float]:
  """Param paths that get the sparsity sub-gradient, with their multipliers.

  mode 'scale': every BatchNorm scale (gamma); 'weight': every Conv / ConvTranspose kernel.
  multipliers: {module path ('up1', 'levels/3/up_conv', ...): factor}, default 1. GCC's
  CycleGAN uses {'stem': 2, 'down1': 2, 'up2': 2, 'up1': 1000} (its model.1/4/22/19).
  """
  if mode not in ("scale", "weight"):
    raise ValueError(f"sparsity mode must be 'scale' or 'weight', got {mode!r}.")
  types = (nnx.BatchNorm,) if mode == "scale" else (nnx.Conv, nnx.ConvTranspose)
  leaf = "scale" if mode == "scale" else "kernel"
  mult = dict(multipliers or {})
  out = {}
  for path, node in nnx.iter_graph(model):
    if isinstance(node, types):
      p = "/".join(str(x) for x in path)
      out[f"{p}/{leaf}"] = float(mult.pop(p, 1.0))
  if mult:
    raise ValueError(f"multipliers name unknown layers {sorted(mult)}; "
                     f"valid: {sorted(k.rsplit('/', 1)[0] for k in out)[:12]}...")
  if not out:
    raise ValueError(f"{type(model).__name__} has no {'BatchNorm' if mode == 'scale' else 'conv'}"
                     f" layers for sparsity mode {mode!r}; use the other mode.")
  return out


def add_l1_subgradient(grads, params, targets: dict[str, float], lam: float):
  """grads + lam * mult * sign(params) on the `targets` leaves (GCC `L1_sparsity`, added after
  backprop). grads / params: the same nnx.State (or pytree) of a generator's Params."""
  def f(path, g, p):
    m = targets.get(_key_str(path))
    return g if m is None else g + (lam * m) * jnp.sign(p).astype(g.dtype)
  return jax.tree_util.tree_map_with_path(f, grads, params)
