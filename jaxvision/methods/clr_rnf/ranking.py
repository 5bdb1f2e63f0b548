"""Cross-Layer Ranking (CLR): computation-aware scores -> per-unit keep counts.

Spec: `shared/papers/clr_rnf.md` §2 steps 1-2.

  s(w)   = |w| / f_l ** lam                    (fp32)
  K      = floor(N * (1 - pr_target))          N = all ranked weights
  tau    = K-th largest score
  p_l    = #{w in unit l : s(w) < tau} / #w(l) (strict "<": ties at tau are kept)
  keep_l = max(1, floor(n_l * (1 - p_l)))      n_l = output filters of unit l

`keep_l` is computed in exact integer arithmetic, `floor(n_l * kept_l / size_l)`, so a
rate like 0.25 never floors 3.0 to 2 through rounding.
"""
from __future__ import annotations

import dataclasses
import fractions
from typing import Sequence

import numpy as np

# λ (`flops_lambda`) per architecture, as in the official code (§2 step 1).
LAMBDA = {"vgg16": 0.5, "resnet56": 10.0, "resnet110": 5.0, "resnet50": 0.4, "googlenet": 0.0}
# Hand-set ResNet-50 factors per stage (official `flops_cfg`, not FLOPs).
RESNET50_STAGE_TABLE = (2.0, 1.5, 1.0, 0.5)

MODES = ("clr", "magnitude", "uniform")


def conv_macs(h_out: int, w_out: int, c_in: int, c_out: int, k: int, bias: bool = False) -> int:
  """Official per-conv cost behind `flops_cfg`: H*W*C_out*(C_in*k*k + 4 + bias)."""
  return int(h_out) * int(w_out) * int(c_out) * (int(c_in) * k * k + 4 + int(bool(bias)))


def vgg_flops_factors(cfg: Sequence, image_size: int = 32, bias: bool = True,
                      in_channels: int = 3) -> np.ndarray:
  """Relative FLOPs f_l of every conv of a VGG `cfg` (ints = 3x3 convs, 'M' = 2x2 pool).

  f_l = FLOPs_l / FLOPs_conv1. Returns float64 [num_convs].
  """
  h, cin, flops = int(image_size), int(in_channels), []
  for v in cfg:
    if v == "M":
      h //= 2
      continue
    flops.append(conv_macs(h, h, cin, int(v), 3, bias))
    cin = int(v)
  if not flops:
    raise ValueError(f"VGG cfg {cfg!r} has no conv layers.")
  flops = np.asarray(flops, np.float64)
  return flops / flops[0]


def resnet_cifar_flops_factors(blocks_per_stage: int, stage_widths: Sequence[int] = (16, 32, 64),
                               inner_widths: Sequence[int] | None = None, image_size: int = 32,
                               in_channels: int = 3) -> np.ndarray:
  """Relative FLOPs f_l of every basic block (conv1 + conv2) of a CIFAR ResNet.

  ref = stem conv + first block, and the first block is set to 1.0 (official `flops_cfg`).
  inner_widths: conv1 widths per block (default: the stage widths). Returns float64 [3n].
  """
  n = int(blocks_per_stage)
  if inner_widths is None:
    inner_widths = [w for w in stage_widths for _ in range(n)]
  if len(inner_widths) != 3 * n:
    raise ValueError(f"inner_widths must have {3 * n} entries, got {len(inner_widths)}.")
  h, cin = int(image_size), int(stage_widths[0])
  stem = conv_macs(h, h, in_channels, cin, 3)
  flops = []
  for s, w in enumerate(stage_widths):
    for b in range(n):
      stride = 2 if (s > 0 and b == 0) else 1
      h_out = -(-h // stride)
      inner = int(inner_widths[s * n + b])
      flops.append(conv_macs(h_out, h_out, cin, inner, 3) + conv_macs(h_out, h_out, inner, w, 3))
      h, cin = h_out, w
  flops = np.asarray(flops, np.float64)
  f = flops / (stem + flops[0])
  f[0] = 1.0
  return f


# The official hard-coded `flops_cfg` constants, literally as printed in the code (5
# decimals: 9.07812 where the exact ratio is 9.078125; flops_mode='table' uses these,
# flops_mode='measured' the exact fractions from `vgg_flops_factors`).
OFFICIAL_FLOPS_CFG = {
    "vgg16": (1.0, 18.15625, 9.07812, 18.07812, 9.03906, 18.03906, 18.03906, 9.01953,
              18.01953, 18.01953, 4.50488, 4.50488, 4.50488),
    "resnet56": (1.0,) + (0.9052,) * 8 + (0.67278,) + (0.89297,) * 8 + (0.66667,)
                + (0.88685,) * 8,
    "resnet110": (1.0,) + (0.9052,) * 17 + (0.67278,) + (0.89297,) * 17 + (0.66667,)
                 + (0.88685,) * 17,
}


@dataclasses.dataclass(frozen=True)
class RankingResult:
  """Output of `cross_layer_ranking` (host numpy)."""
  keep: tuple[int, ...]      # filters kept per unit (>= 1)
  rates: tuple[float, ...]   # p_l: fraction of the unit's weights below tau
  tau: float                 # global threshold (K-th largest score; inf when K == 0)
  num_ranked: int            # N
  num_kept_weights: int      # K
  kept_fraction: tuple[tuple[int, int], ...] = ()  # (num, den) per unit: 1 - p_l exactly

  def keep_of(self, n: int, unit: int) -> int:
    """max(1, floor(n * (1 - p_unit))) for another width n sharing the unit's rate."""
    num, den = self.kept_fraction[unit]
    return max(1, (int(n) * num) // den)


def unit_scores(weights: Sequence[np.ndarray], f: Sequence[float], lam: float) -> list[np.ndarray]:
  """s = |w| / f**lam per unit, flattened fp32. weights[l]: any shape."""
  if len(weights) != len(f):
    raise ValueError(f"got {len(weights)} weight units but {len(f)} flops factors.")
  out = []
  for w, fl in zip(weights, f):
    if not fl > 0:
      raise ValueError(f"flops factors must be > 0, got {fl}.")
    denom = np.float32(float(fl) ** float(lam))
    out.append(np.abs(np.asarray(w, np.float32)).reshape(-1) / denom)
  return out


def global_threshold(scores: Sequence[np.ndarray], pr_target: float) -> tuple[float, int, int]:
  """tau = K-th largest of all scores, K = floor(N (1 - pr_target)). Returns (tau, N, K)."""
  if not 0.0 <= pr_target < 1.0:
    raise ValueError(f"pr_target must be in [0, 1), got {pr_target}.")
  allv = np.concatenate([np.asarray(s, np.float32).reshape(-1) for s in scores])
  n = int(allv.size)
  k = int(np.floor(n * (1.0 - pr_target)))
  if k <= 0:
    return float("inf"), n, 0
  # K-th largest == (N-K)-th smallest (0-based).
  tau = np.partition(allv, n - k)[n - k]
  return float(tau), n, k


def keep_counts(num_filters: Sequence[int], rates_num: Sequence[int],
                rates_den: Sequence[int]) -> tuple[int, ...]:
  """keep_l = max(1, floor(n_l * (1 - num/den))) in exact integer arithmetic."""
  out = []
  for n, c, d in zip(num_filters, rates_num, rates_den):
    out.append(max(1, (int(n) * (int(d) - int(c))) // int(d)))
  return tuple(out)


def cross_layer_ranking(weights: Sequence[np.ndarray], num_filters: Sequence[int],
                        f: Sequence[float], lam: float, pr_target: float,
                        mode: str = "clr") -> RankingResult:
  """Per-unit keep counts from one global ranking.

  Args:
    weights: one array per ranking unit (e.g. a conv kernel [kh, kw, cin, cout], or the
      concatenation of a stage's conv3 kernels); only magnitudes and sizes matter.
    num_filters: n_l, filters of each unit (the width whose keep count is returned).
    f: relative FLOPs factor per unit (> 0).
    lam: λ; 0 gives plain global magnitude ranking.
    pr_target: fraction of the ranked weights to remove, in [0, 1).
    mode: 'clr' (s = |w| / f**lam), 'magnitude' (λ forced to 0) or 'uniform'
      (every unit gets p_l = pr_target; ablation).
  """
  if mode not in MODES:
    raise ValueError(f"ranking mode {mode!r} is unknown; use one of {MODES}.")
  if len(num_filters) != len(weights):
    raise ValueError(f"got {len(weights)} weight units but {len(num_filters)} filter counts.")
  sizes = [int(np.size(w)) for w in weights]
  if mode == "uniform":
    if not 0.0 <= pr_target < 1.0:
      raise ValueError(f"pr_target must be in [0, 1), got {pr_target}.")
    kf = fractions.Fraction(1) - fractions.Fraction(repr(float(pr_target)))
    keep = tuple(max(1, (int(n) * kf.numerator) // kf.denominator) for n in num_filters)
    n = sum(sizes)
    return RankingResult(keep, tuple(float(pr_target) for _ in weights), float("nan"), n,
                         int(np.floor(n * (1.0 - pr_target))),
                         tuple((kf.numerator, kf.denominator) for _ in weights))
  scores = unit_scores(weights, f, 0.0 if mode == "magnitude" else lam)
  tau, n, k = global_threshold(scores, pr_target)
  below = [int(np.count_nonzero(s < np.float32(tau))) for s in scores]
  keep = keep_counts(num_filters, below, sizes)
  rates = tuple(b / s for b, s in zip(below, sizes))
  return RankingResult(keep, rates, tau, n, k, tuple((s - b, s) for b, s in zip(below, sizes)))
