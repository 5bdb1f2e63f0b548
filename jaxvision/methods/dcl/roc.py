"""ROC curves of DCL's test sets (dcl.md §5): the `dcl_forgery` loop evaluator and the PNG writer.

`dcl_forgery` is the `forgery` evaluator (frame- and video-level AUC / EER / ACC) that also
plots the ROC of each result into the run's workdir (the loop's evaluation context names it):
`roc.png` for the curve "eval", `roc_<name>.png` otherwise, frame level and, with video ids,
video level in one plot. Each evaluation overwrites it, so the run leaves the final one; the
method's summary lists the files.

    config.evals.eval.evaluators = {"forgery": {"type": "dcl_forgery", "curve": "eval"}}
"""
from __future__ import annotations

import logging
import os
from typing import Mapping, Optional

import numpy as np

from jaxvision.core.evaluation import LoopEvaluator, register
from jaxvision.evaluators import forgery, ranking

def curve(scores, labels) -> tuple[np.ndarray, np.ndarray, float]:
  """(fpr [P], tpr [P], auc) of [N] scores (p_fake) and 0/1 labels."""
  fpr, tpr, _ = ranking.roc_curve(scores, labels)
  return fpr, tpr, ranking.roc_auc(scores, labels)


@register("dcl_forgery")
class DCLForgery(LoopEvaluator):
  """`forgery` (frame + video AUC / EER / ACC from {"score", "label"[, "video_id"]}) that also
  writes its ROC to `<context workdir>/png_name(curve)` (main process; none without a
  workdir). `latest` keeps the last curves: {"step", "frame": (fpr, tpr, auc), "video"}."""
  inputs = (("scores", "score"), ("labels", "label"))
  optional = (("video_ids", "video_id"),)
  factory = forgery.ForgeryEvaluator

  def __init__(self, curve: str = "eval", keys=None, **options):  # pylint: disable=redefined-outer-name
    self.curve_name = str(curve)
    self.latest: Optional[dict] = None
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
    self.latest = entry
    ctx = context or {}
    if ctx.get("workdir") and ctx.get("is_main", True):
      try:
        plot_roc(entry, os.path.join(ctx["workdir"], png_name(self.curve_name)),
                 f"DCL: {self.curve_name} (step {entry['step']})")
      except OSError as e:  # a read-only workdir must not stop the run
        logging.warning("dcl_forgery: could not write the ROC PNG: %s", e)
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


def written(workdir: str, names) -> dict[str, str]:
  """{name: path} of the ROC PNGs of `names` present in workdir."""
  paths = {n: os.path.join(workdir, png_name(n)) for n in names}
  return {n: p for n, p in paths.items() if os.path.exists(p)}
