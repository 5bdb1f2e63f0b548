"""The `config.lfpnet` block: every LFPNet training option with its default (read strictly).

[RECON] defaults follow the FBA-style recipe of spec lfpnet.md §4 and the resolutions of §9.
"""
import ml_collections

BASELINES = ("half", "closed_form", "knn")


def loss_defaults() -> ml_collections.ConfigDict:
  """Weights of `losses.LossWeights` (0 disables a term; context 0.5 as spec §9.2)."""
  return ml_collections.ConfigDict({"alpha": 1.0, "comp": 1.0, "lap": 1.0, "grad": 1.0,
                                    "fb": 1.0, "context": 0.5})


def defaults() -> ml_collections.ConfigDict:
  """inner_size: the inner patch side S of training (a multiple of 32); the training records
  are the 2S context crops (config.dataset.image_size must be 2S) and the inner patch is their
  centre S x S. trimap_radius: (lo, hi) erosion radius r drawn per example and independently for
  fg and bg; the square kernel has side 2r + 1 (spec §4: 1-30 px). trimap_eps: alpha <= eps is
  background, >= 1 - eps foreground, everything between is always unknown. bg_swap_prob: per
  example, the background is replaced by the next example's background in the batch (a new
  composite alpha * F + (1 - alpha) * B' is made on the fly). data_trimap: train with the
  dataset's trimaps instead of generated ones. eval_tile: evaluation tiles of this side (a
  multiple of 32; stride tile / 2, tent blending, as the full-resolution inference), 0 = each
  eval image as one tile. eval_tta: "none" | "official" (eval.py's one flip + rotation) | "8"
  (eval(TTA).py). eval_quantize: predictions as uint8 / 255 with
  truncation (official eval.py) before the metrics. baselines: computed on the same eval set,
  'half' (0.5 on unknown) through the loop's matting evaluator, 'closed_form' / 'knn'
  (pymatting, extra `matting`) in the summary. panels: PNG of image / trimap / predicted / true
  alpha for the first `panels` eval images (0 = off). head_bias_init: < 0 (PyTorch default init)
  or v >= 0: the head's last-conv biases start at v on a fresh start (the official clamp of alpha / F /
  B passes no gradient once an output leaves [0, 1]; some seeds start there)."""
  return ml_collections.ConfigDict({
      "inner_size": 512,
      "trimap_radius": (0, 15),
      "trimap_eps": 1e-3,
      "bg_swap_prob": 0.5,
      "data_trimap": False,
      "loss": loss_defaults(),
      "eval_tile": 0,
      "eval_tta": "none",
      "eval_quantize": True,
      "baselines": ("half", "closed_form"),
      "panels": 4,
      "head_bias_init": -1.0,
  })
