"""LFPNet: "Long-Range Feature Propagating for Natural Image Matting" (Liu et al., ACM MM 2021;
spec ../shared/papers/lfpnet.md, official QLYoo/LFPNet is inference only).

Training is the spec's [RECON] FBA-style recipe (§4): composites made on the fly (alpha * F +
(1 - alpha) * B, backgrounds swapped within the batch), trimaps by random erosion of the fg / bg
regions, 2S context crops around unknown pixels with the inner S centre crop, losses on alpha /
composition / Laplacian / gradient / F-B and the context alpha (0.5). Every choice is in
`config.lfpnet` (jaxvision/methods/lfpnet/config.py). Evaluation: SAD / MSE / Grad / Conn on the
trimap's unknown pixels (the `matting` evaluator), each eval image as one tile; full-resolution
tiled inference with TTA is `python -m jaxvision.methods.lfpnet.predict`.

Variants (``--config=configs/lfpnet.py:<variant>[,demo|smoke]``):
  comp1k (default)  Adobe Composition-1k, user-prepared folders (dataset `comp1k_folder`):
                    --config.dataset.fg_folder=~/comp1k/train/fg
                    --config.dataset.alpha_folder=~/comp1k/train/alpha
                    --config.dataset.bg_folder=~/coco/train2014   (backgrounds)
                    --config.dataset.test_merged=~/comp1k/test/merged
                    --config.dataset.test_alpha=~/comp1k/test/alpha_copy
                    --config.dataset.test_trimap=~/comp1k/test/trimaps
                    Full LFPNet (shared ResNet-50 backbone, from scratch: no JAX ImageNet WS+GN
                    weights), S = 512 / context 1024, batch 1 per device, RAdam 1e-5
                    (torch.optim.RAdam's rule, L2 1e-4), 45 epochs of 43,100 composites with
                    lr x0.1 at epoch 40. Evaluation as the official eval.py: 1024 tiles, stride
                    512, tent blending, its one flip + rotation (`lfpnet.eval_tta="8"` is
                    eval(TTA).py). Missing folders stop the run with one line.
  alphamatting      the same training, evaluated on the alphamatting.com training set (27
                    images with public ground truth; --config.dataset.alphamatting_dir=~/am
                    holding input_training_lowres/, trimap_training_lowres/Trimap1|Trimap2/,
                    gt_training_lowres/; --config.dataset.alphamatting_trimap=Trimap2). The
                    test-set alphas for the online ranking: `python -m
                    jaxvision.methods.lfpnet.predict --alphamatting ~/am --out DIR --params ...`.
  demo   (flag) embedded photos (photos_matting: a fg crop of one photo over a bg crop of
         another, procedural soft alphas; held-out test photos for eval), tiny LFPNet (width
         1/8, one bottleneck per stage), S = 32 / context 64 (80px records, random 64 crops),
         trimap radius 0-4, batch 8, Adam 2e-3 cosine, 800 steps, head biases start at 0.5
         (lfpnet.head_bias_init; with the default init one seed in three stalled), on CPU. Eval:
         32 held-out 64x64 composites with the dataset's trimaps, tiled at the training size
         (32 px tiles, stride 16, context 64, tent blending; lfpnet.eval_tile=0 = one tile).
         Compared in the same summary on the same 32 held-out 64x64 composites: the 0.5-in-
         unknown baseline (`half_baseline/*`) and closed-form matting (pymatting, extra
         `matting`; summary `baselines.closed_form`). panels.png: image | trimap | predicted
         alpha | true alpha.
  smoke  (flag) tiny CI run (2 steps, checkpoint and exact resume; one branch per pyramid).

Command (three seeds, mean ± std of LFPNet and the baselines in <workdir>/summary.json)::

  python -m jaxvision.main --config=configs/lfpnet.py:demo --workdir=/tmp/lfp_demo --seeds=3
"""

# The :smoke run (train, eval, checkpoint, exact resume) is tested by this file; the
# generic tests/configs smoke test does not run it a second time.
SMOKE_TESTED_BY = "tests/methods/lfpnet/test_lfpnet_method.py"
import ml_collections

from jaxvision import config_lib
from jaxvision.methods.lfpnet.config import defaults

VARIANTS = ("comp1k", "alphamatting")
TINY = {"width_multiplier": 1 / 8, "blocks": (1, 1, 1, 1)}


def _evals(baselines=True):
  ev = {"matting": {}}
  if baselines:
    ev["half_baseline"] = {"type": "matting", "keys": {"pred": "pred_half"}}
  return ml_collections.ConfigDict({"eval": config_lib.eval_block(predict="alpha",
                                                                  evaluators=ev)})


def get_config(arg=None):
  variant, flags = config_lib.parse_arg(arg, VARIANTS, default="comp1k")
  c = config_lib.base_config()
  c.method = "lfpnet"
  c.lfpnet = defaults()
  c.lfpnet.inner_size = 512
  c.lfpnet.eval_tile = 1024
  c.lfpnet.eval_tta = "official"
  c.models = ml_collections.ConfigDict({"matting": config_lib.model_block("lfpnet")})
  c.optims = ml_collections.ConfigDict({"matting": config_lib.optim_block(
      name="radam", lr=1e-5, b1=0.9, b2=0.999, weight_decay=1e-4, schedule="step",
      milestones_epochs=(40,), gamma=0.1)})
  c.dataset.update(
      name="comp1k_folder", fg_folder="", alpha_folder="", bg_folder="", test_merged="",
      test_alpha="", test_trimap="", image_size=1024, eval_size=2048, num_train=43_100,
      record_size=0, num_eval=0, data_seed=0, test_layout="comp1k", alphamatting_dir="",
      alphamatting_trimap="Trimap1")
  if variant == "alphamatting":
    c.dataset.test_layout = "alphamatting"
  c.batch_size = 1
  c.eval_batch_size = 1
  c.num_epochs = 45
  c.evals = _evals()
  c.checkpoint_every = 5000
  c.log_every = 100
  photos = {"dataset.name": "photos_matting", "dataset.image_size": 64,
            "dataset.record_size": 80, "dataset.eval_size": 64, "dataset.num_train": 4000,
            "dataset.num_eval": 32, "dataset.num_workers": 2, "num_epochs": None,
            "lfpnet.inner_size": 32, "lfpnet.eval_tile": 32, "lfpnet.eval_tta": "none",
      "lfpnet.trimap_radius": (0, 4), "lfpnet.head_bias_init": 0.5,
      "models.matting": config_lib.model_block("lfpnet", **TINY),
      "optims.matting": config_lib.optim_block(name="adam", lr=2e-3, weight_decay=0.0,
                                               schedule="cosine")}
  config_lib.apply_flags(c, flags, demo={
      **photos, "batch_size": 8, "eval_batch_size": 32, "steps": 800, "log_every": 100,
      "checkpoint_every": 0,
  }, smoke={
      **photos, "dataset.num_train": 32, "dataset.num_eval": 8, "lfpnet.panels": 2,
      "lfpnet.baselines": ("half",),
      # one branch per pyramid (rppm / ppm / aspp): fewer ops to trace and compile
      "models.matting": config_lib.model_block("lfpnet", width_multiplier=1 / 16,
                                               blocks=(1, 1, 1, 1), rppm_bins=(1,),
                                               ppm_bins=(1,), aspp_rates=(3,)),
      "batch_size": 8, "eval_batch_size": 8, "steps": 2, "log_every": 1, "checkpoint_every": 1,
  })
  return c
