"""The one protocol through which the training loop drives every evaluator.

A method's prediction function returns a dict of per-example arrays ([B, ...]) for a batch;
the loop hands this process's rows to each configured evaluator::

  ev = make(kind, **options)    # from config.evals.<name>.evaluators.<label>
  ev.update(outputs, mask)      # outputs: {key: np.ndarray [B, ...]}, mask: [B] 0/1
  ev.result(context)            # -> {metric: float}; a collective across hosts
                                #    context: {"step", "stage", "time"} of this evaluation

Each adapter reads its inputs from output keys named by `keys` ({argument: output key};
defaults below), and passes the remaining options to the evaluator class, whose pure
functions (and multi-host combination) stay in their modules. Padded rows (mask 0) never
change a result. An output key an evaluator needs but the prediction lacks stops the run at
start-up (the loop checks with `required_keys` on an abstract evaluation).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxvision.core.errors import ConfigError
from jaxvision.core.evaluation import (LoopEvaluator, check_outputs, from_config, make,  # noqa: F401
                                       register)
from jaxvision.evaluators import (attack, autodl, base, cityscapes_miou, classification, forgery,
                                  gan, image_quality, matting, niqe, rec, segmentation, vqa)


@register("mean")
class Mean(LoopEvaluator):
  """Masked mean over the eval set of every scalar-per-example output (or of `only`)."""

  def __init__(self, only: Sequence[str] = (), keys=None):
    self.only = tuple(only)
    super().__init__(keys)

  def reset(self):
    self.impl = base.MeanAccumulator()

  def required_keys(self):
    return list(self.only)

  def update(self, out, mask):
    vals = {k: v for k, v in out.items()
            if (not self.only or k in self.only) and np.ndim(v) == 1
            and np.issubdtype(np.asarray(v).dtype, np.number)}
    self.impl.update(vals, mask)


@register("classification")
class Classification(LoopEvaluator):
  """top-k accuracy and loss from {"logits": [B, K], "label": [B]}."""
  inputs = (("logits", "logits"), ("labels", "label"))
  factory = classification.ClassificationEvaluator


@register("psnr_ssim")
class PsnrSsim(LoopEvaluator):
  """PSNR/SSIM (Y channel, border crop = scale) from {"pred", "target"} images in [0, 1]."""
  inputs = (("pred", "pred"), ("target", "target"))
  factory = image_quality.PsnrSsimEvaluator


@register("niqe")
class Niqe(LoopEvaluator):
  """Mean NIQE (`niqe.py`) of {"pred": images [B, H, W, 3] in [0, 1]} cropped to the optional
  {"hw": true sizes [B, 2]}; options model=<pristine model file> ("" = off: reads nothing),
  border."""
  inputs = (("images", "pred"),)
  optional = (("hw", "hw"),)
  factory = niqe.NiqeEvaluator

  def required_keys(self):
    return super().required_keys() if self.options.get("model") else []

  def update(self, out, mask):
    if self.options.get("model"):
      super().update(out, mask)


@register("matting")
class Matting(LoopEvaluator):
  """SAD/MSE/Grad/Conn in the trimap's unknown region from {"pred", "target", "trimap"}."""
  inputs = (("pred", "pred"), ("target", "target"), ("trimap", "trimap"))
  factory = matting.MattingEvaluator


@register("forgery")
class Forgery(LoopEvaluator):
  """Frame-level AUC/EER/ACC (+ video level when "video_id" is output) from {"score", "label"}."""
  inputs = (("scores", "score"), ("labels", "label"))
  optional = (("video_ids", "video_id"),)
  factory = forgery.ForgeryEvaluator


@register("rec")
class Rec(LoopEvaluator):
  """Referring-expression accuracy (IoU > threshold) from {"box", "target_box"}."""
  inputs = (("pred", "box"), ("target", "target_box"))
  factory = rec.RecEvaluator


@register("miou")
class Miou(LoopEvaluator):
  """Segmentation mIoU from {"gt", "pred"} integer maps."""
  inputs = (("gt", "gt"), ("pred", "pred"))
  factory = segmentation.MiouEvaluator


@register("fid")
class Fid(LoopEvaluator):
  """FID (and KID) of generated-image features {"features"} against real statistics."""
  inputs = (("fake_features", "features"),)
  factory = gan.FidEvaluator


@register("vqa")
class Vqa(LoopEvaluator):
  """VQA accuracy from answer indices {"answer": [B], "gt_answers": [B, 10]} and `vocab`."""
  inputs = (("preds", "answer"), ("gt_answers", "gt_answers"))
  optional = (("answer_types", "answer_type"),)

  def __init__(self, vocab: Sequence[str] = (), keys=None, **options):
    if not vocab:
      raise ConfigError("evaluator 'vqa' needs vocab=[answer strings] (index -> answer)")
    self.vocab = list(vocab)
    super().__init__(keys, **options)

  def reset(self):
    self.impl = vqa.VqaEvaluator(**self.options)

  def update(self, out, mask):
    words = lambda idx: [self.vocab[int(i)] for i in np.asarray(idx).reshape(-1)]
    preds = words(out[self.keys["preds"]])
    gts = np.asarray(out[self.keys["gt_answers"]])
    gt = [words(row) for row in gts]
    kw = {}
    if self.keys["answer_types"] in out:
      kw["answer_types"] = [str(t) for t in np.asarray(out[self.keys["answer_types"]])]
    self.impl.update(preds, gt, mask=mask, **kw)


@register("attack_success")
class AttackSuccess(LoopEvaluator):
  """Success rate of adversarial predictions {"adv_logits", "label"} (and clean logits)."""
  inputs = (("adv", "adv_logits"),)
  optional = (("clean", "clean_logits"), ("labels", "label"))

  def __init__(self, victim: str = "victim", keys=None, **options):
    self.victim = victim
    super().__init__(keys, **options)

  def reset(self):
    self.impl = attack.AttackEvaluator(**self.options)

  def update(self, out, mask):
    kw = {a: out[self.keys[a]] for a, _ in self.optional if self.keys[a] in out}
    self.impl.update(self.victim, out[self.keys["adv"]], mask=mask, **kw)


@register("autodl_alc")
class Alc(LoopEvaluator):
  """Anytime learning curve: NAUC of each evaluation at its wall-clock time, and the ALC so far.

  Outputs {"prediction": [B, K] scores, "solution": [B, K] 0/1}; the timestamp is the
  evaluation's `context["time"]` (seconds since the run started).
  """
  inputs = (("prediction", "prediction"), ("solution", "solution"))

  def __init__(self, keys=None, **options):
    self.history: list[tuple[float, float]] = []
    super().__init__(keys, **options)

  def reset(self):
    self.rows = base.ConcatAccumulator()

  def update(self, out, mask):
    self.rows.update({"p": out[self.keys["prediction"]], "s": out[self.keys["solution"]]}, mask)

  def result(self, context=None):
    rows = self.rows.result()
    score = autodl.nauc(rows["s"], rows["p"])
    t = float((context or {}).get("time", len(self.history)))
    self.history.append((t, score))
    ts, ss = zip(*self.history)
    return {"nauc": float(score), "alc": float(autodl.alc(ts, ss, **self.options))}
