"""ROC curves of DCL's test sets (dcl.md §5): the `dcl_forgery` loop evaluator and the PNG writer.

`dcl_forgery` is the `forgery` evaluator (frame- and video-level AUC / EER / ACC) that also
keeps the ROC points of its latest result under its `curve` name; at the end of a run the
method's summary writes them as `roc.png` (the "eval" test set) or `roc_<name>.png` into the
workdir, frame level and, with video ids, video level in one plot.

    config.evals.eval.evaluators = {"forgery": {"type": "dcl_forgery", "curve": "eval"}}
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

import numpy as np

from jaxvision.core.evaluation import LoopEvaluator, register
from jaxvision.evaluators import forgery, ranking

# curve name -> {"step", "frame": (fpr, tpr, auc), "video": (fpr, tpr, auc) | None}, the
# latest result of each `dcl_forgery` evaluator in this process (taken by `take_curves`).
_LATEST: dict[str, dict] = {}


def curve(scores, labels) -> tuple[np.ndarray, np.ndarray, float]:
  """(fpr [P], tpr [P], auc) of [N] scores (p_fake) and 0/1 labels."""
  fpr, tpr, _ = ranking.roc_curve(scores, labels)
  return fpr, tpr, ranking.roc_auc(scores, labels)


@register("dcl_forgery")
class DCLForgery(LoopEvaluator):
  """`forgery` (frame + video AUC / EER / ACC from {"score", "label"[, "video_id"]}) that also
  records its ROC curve under `curve` for the run's roc PNG."""
  inputs = (("scores", "score"), ("labels", "label"))
  optional = (("video_ids", "video_id"),)
  factory = forgery.ForgeryEvaluator

  def __init__(self, curve: str = "eval", keys=None, **options):  # pylint: disable=redefined-outer-name
    self.curve_name = str(curve)
    super().__init__(keys, **options)

  def result(self, context: Optional[Mapping] = None) -> dict[str, float]:
    out = super().result(context)
    rows = self.impl.acc.result()
    s, y = rows["scores"], rows["labels"]
    entry = {"step": None if context is None else context.get("step"), "frame": curve(s, y),
             "video": None}
    if "video_ids" in rows:
      vs, vy, _ = forgery.video_scores(s, y, rows["video_ids"])
      entry["video"] = curve(vs, vy)
    _LATEST[self.curve_name] = entry
    return out


def take_curves(names, step: int) -> dict[str, dict]:
  """Pops the recorded curves of `names` made at `step` (older ones are dropped)."""
  out = {}
  for n in names:
    e = _LATEST.pop(n, None)
    if e is not None and (e["step"] is None or int(e["step"]) == int(step)):
      out[n] = e
  return out


def png_name(name: str) -> str:
  return "roc.png" if name == "eval" else f"roc_{name}.png"


def plot_roc(entry: dict, path: str, title: str) -> str:
  """One ROC plot (frame level, and video level when present; AUC in the legend) -> path."""
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("the ROC PNG needs matplotlib: pip install matplotlib") from e
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(4.2, 4.0))
  for level in ("frame", "video"):
    if entry.get(level) is not None:
      fpr, tpr, auc = entry[level]
      ax.plot(fpr, tpr, label=f"{level} AUC {100 * auc:.2f}", drawstyle="default")
  ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
  ax.set_xlim(0, 1)
  ax.set_ylim(0, 1.01)
  ax.set_xlabel("false positive rate (real called fake)")
  ax.set_ylabel("true positive rate (fake detected)")
  ax.set_title(title, fontsize=9)
  ax.legend(loc="lower right")
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def write_pngs(workdir: str, names, step: int, title: str = "DCL") -> dict[str, str]:
  """Writes the recorded curves of `names` at `step` into workdir; {name: png path}."""
  return {n: plot_roc(e, os.path.join(workdir, png_name(n)), f"{title}: {n} (step {step})")
          for n, e in take_curves(names, step).items()}
