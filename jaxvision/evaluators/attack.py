"""Adversarial transfer attacks: success rate per victim and the L∞ budget.

Source: llta.md §4 (official `eval/evaluate_NT_trained.py`).
  success rate (criterion 'fooling', the official one) = % of images whose
    victim prediction on x_adv differs from its prediction on the clean x;
    criterion 'misclassification' (TransferAttack tables) = % with
    prediction on x_adv != ground-truth label.
  The summary mean is over victims, optionally excluding the source model
  (the NT script drops ResNet-50, the default surrogate).
  L∞ budget: ‖x_adv − x‖∞ ≤ ε (+ atol) per image and x_adv ∈ [0, 1]; with the
  official uint8 truncation of x_adv use atol = 1/255.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import MeanAccumulator, check_mask, to_numpy

CRITERIA = ("fooling", "misclassification")


def _preds(x) -> np.ndarray:
  x = to_numpy(x)
  return x.argmax(-1) if x.ndim == 2 else x.astype(np.int64)


def success(adv, clean=None, labels=None, criterion: str = "fooling") -> np.ndarray:
  """Per-image success (1.0/0.0), [B].

  adv, clean: victim logits [B, K] or predicted classes [B]; labels: [B] int
  (needed for 'misclassification', where clean is not used).
  """
  if criterion not in CRITERIA:
    raise ValueError(f"criterion must be one of {CRITERIA}, got '{criterion}'")
  pa = _preds(adv)
  if criterion == "fooling":
    if clean is None:
      raise ValueError("criterion 'fooling' needs the victim's clean predictions")
    ref = _preds(clean)
  else:
    if labels is None:
      raise ValueError("criterion 'misclassification' needs labels")
    ref = to_numpy(labels).astype(np.int64)
  if ref.shape != pa.shape:
    raise ValueError(f"adversarial {pa.shape} and reference {ref.shape} predictions differ in shape")
  return (pa != ref).astype(np.float64)


def success_rate(adv, clean=None, labels=None, criterion: str = "fooling",
                 mask=None) -> float:
  """Success rate in % over real rows (see `success`)."""
  s = success(adv, clean, labels, criterion)
  m = check_mask(mask, s.shape[0])
  return float(100.0 * s[m].mean()) if m.any() else float("nan")


def linf_norm(adv, clean) -> np.ndarray:
  """‖x_adv − x‖∞ per image. adv, clean: [B, H, W, C] -> [B]."""
  a = to_numpy(adv).astype(np.float64)
  c = to_numpy(clean).astype(np.float64)
  if a.shape != c.shape:
    raise ValueError(f"adv {a.shape} and clean {c.shape} must have the same shape")
  return np.abs(a - c).reshape(a.shape[0], -1).max(axis=1)


def check_linf_budget(adv, clean, eps: float, atol: float = 1e-6,
                      value_range=(0.0, 1.0), raise_error: bool = False) -> dict:
  """Checks ‖x_adv − x‖∞ ≤ eps + atol and x_adv within `value_range`.

  An image with a NaN/inf pixel (in adv or clean) fails both checks.
  Returns {'max_linf' (NaN if any image is non-finite), 'num_violations'
  (budget), 'num_out_of_range', 'num_nonfinite', 'ok'}; with raise_error=True a
  failed check raises ValueError naming the images.
  """
  n = linf_norm(adv, clean)
  a = to_numpy(adv).astype(np.float64)
  flat = a.reshape(a.shape[0], -1)
  cflat = to_numpy(clean).astype(np.float64).reshape(a.shape[0], -1)
  nonfinite = np.flatnonzero(~(np.isfinite(flat).all(1) & np.isfinite(cflat).all(1)))
  bad = np.flatnonzero(~(n <= eps + atol))  # NaN fails
  inside = (flat >= value_range[0] - atol) & (flat <= value_range[1] + atol)  # NaN fails
  oor = np.flatnonzero(~inside.all(1))
  ok = bad.size == 0 and oor.size == 0
  if raise_error and not ok:
    raise ValueError(f"L∞ budget eps={eps} violated by images {bad[:10].tolist()} "
                     f"(max {np.max(n):.6g}); out of range {value_range}: {oor[:10].tolist()}"
                     + (f"; non-finite (NaN/inf) images {nonfinite[:10].tolist()}"
                        if nonfinite.size else ""))
  return {"max_linf": float(np.max(n)) if n.size else 0.0, "num_violations": int(bad.size),
          "num_out_of_range": int(oor.size), "num_nonfinite": int(nonfinite.size),
          "ok": bool(ok)}


@EVALUATORS.register("attack_success")
class AttackEvaluator:
  """Success rate (%) per victim and their mean.

  `update(victim, adv, clean=None, labels=None, mask=None)`: one batch of one
  victim's logits/predictions on adversarial and clean images.
  `result()` -> {'success/<victim>': %, 'success_mean': mean over victims not
  in `exclude_from_mean`} (sums over hosts).
  """

  def __init__(self, criterion: str = "fooling", exclude_from_mean: Sequence[str] = ()):
    if criterion not in CRITERIA:
      raise ValueError(f"criterion must be one of {CRITERIA}, got '{criterion}'")
    self.criterion = criterion
    self.exclude = set(exclude_from_mean)
    self.acc = MeanAccumulator()

  def reset(self):
    self.acc.reset()

  def update(self, victim: str, adv, clean=None, labels=None, mask=None):
    s = success(adv, clean, labels, self.criterion)
    self.acc.update({f"success/{victim}": 100.0 * s}, mask)

  def result(self) -> dict[str, float]:
    r = self.acc.result()
    used = [v for k, v in r.items() if k.split("/", 1)[1] not in self.exclude]
    r["success_mean"] = float(np.mean(used)) if used else float("nan")
    return r
