"""LLTA: Learning to Learn Transferable Attack (Fang et al., AAAI 2022), with MI/DI/TI/SGM.

A surrogate (white-box) and victims (black-box) are roles; every attack in llta.attacks runs
on the surrogate; summary.json gets the transfer matrix (attack x model, %), white-box and
black-box-mean success and per-image results; transfer_matrix.png is its heat map.

Variants (``--config=configs/llta.py:<variant>[,demo|smoke]``):
  imagenet  (default) ResNet-50 surrogate, ResNet-18/34 and MobileNet-v2 victims, frozen
            from torchvision checkpoints (set models.<role>.init.torch_checkpoint), the
            first 1000 ImageNet validation images (tfds imagenet2012 in dataset.data_dir),
            eps = 16/255, T = 10, official LLTA sizes. llta.md §5 anchor (TransferAttack,
            LLTA+MI, RN-50 source): VGG-16 96.6, MobileNet-v2 95.1, Inc-v3 83.8. Not run here.
  demo      (flag) embedded digits (32x32, pixels in [0, 1]): a ResNet-20 surrogate and
            VGG-16 / MobileNet-v1 / small-CNN victims trained first (200-500 steps each), then
            all attacks at eps = 0.1 on 120 test images, reduced LLTA sizes. Several seeds
            (mean ± std of every matrix entry in one summary.json):
            python -m jaxvision.main --config=configs/llta.py:demo \\
                --workdir=/tmp/llta_demo --seeds=3
  smoke     (flag) tiny CI run (digits, 8 devices, checkpoint and resume).

  python -m jaxvision.main --config=configs/llta.py --workdir=/tmp/llta \\
      --config.dataset.data_dir=~/tensorflow_datasets \\
      --config.models.surrogate.init.torch_checkpoint=resnet50-19c8e357.pth ...
"""

# The :smoke run (train, eval, checkpoint, exact resume) is tested by this file; the
# generic tests/configs smoke test does not run it a second time.
SMOKE_TESTED_BY = "tests/methods/llta/test_llta_method.py"
import ml_collections

from jaxvision import config_lib
from jaxvision.methods.llta.config import defaults

VARIANTS = ("imagenet",)

DEMO_LLTA = {"search_epochs": 2, "search_samples": 3, "num_tasks": 2, "support_size": 8,
             "query_size": 4}


def get_config(arg=None):
  _, flags = config_lib.parse_arg(arg, VARIANTS, default="imagenet")
  c = config_lib.base_config()
  c.method = "llta"
  c.llta = defaults()
  c.models = ml_collections.ConfigDict({
      "surrogate": config_lib.model_block("resnet50", trainable=False),
      "victim_resnet18": config_lib.model_block("resnet18", trainable=False),
      "victim_resnet34": config_lib.model_block("resnet34", trainable=False),
      "victim_mobilenet_v2": config_lib.model_block("mobilenet_v2", trainable=False)})
  c.optims = ml_collections.ConfigDict()
  c.dataset.name = "imagenet2012"
  c.llta.attack_pp = "decode|resize_center_crop(256, 224)|to_float"
  c.llta.norm = {"default": "imagenet"}
  c.steps = 0
  c.batch_size = 8
  c.eval_batch_size = 50
  c.evals = ml_collections.ConfigDict({
      f"acc_{r}": config_lib.eval_block(predict=f"classify_{r}",
                                        evaluators={"classification": {}})
      for r in c.models.keys()})
  demo_models = {
      "surrogate": config_lib.model_block("resnet20", width_multiplier=0.5),
      "victim_vgg16": config_lib.model_block("vgg16", width_multiplier=0.125),
      "victim_mobilenet_v1": config_lib.model_block("mobilenet_v1", width_multiplier=0.25),
      "victim_cnn": config_lib.model_block("cnn_small", width_multiplier=0.5)}
  # Per-role steps and lr (SGD, cosine): each model >= 90 % clean accuracy on the digits test
  # split (mobilenet_v2 does not train reliably at 32x32 here, so mobilenet_v1 stands in).
  demo_steps = {"surrogate": 300, "victim_vgg16": 200, "victim_mobilenet_v1": 400,
                "victim_cnn": 500}
  demo_lr = {"surrogate": 0.05, "victim_vgg16": 0.05, "victim_mobilenet_v1": 0.1,
             "victim_cnn": 0.2}
  digits = {
      "dataset.name": "digits", "llta.attack_pp": "to_float", "llta.norm": {"default": "digits"},
      "models": ml_collections.ConfigDict(demo_models),
      "optims": ml_collections.ConfigDict({
          r: config_lib.optim_block(lr=demo_lr[r], weight_decay=5e-4) for r in demo_models}),
      "evals": ml_collections.ConfigDict({
          f"acc_{r}": config_lib.eval_block(predict=f"classify_{r}",
                                            evaluators={"classification": {}})
          for r in demo_models}),
      "llta.eps": 0.1, "llta.attacks": ("mifgsm", "dim", "tim", "sgm", "llta", "llta_mi",
                                        "llta_mi_ti"),
      "llta.overrides": {"llta": dict(DEMO_LLTA), "llta_mi": dict(DEMO_LLTA),
                         "llta_mi_ti": {**DEMO_LLTA, "ti_kernel": 5}, "tim": {"ti_kernel": 5}},
      "batch_size": 32, "eval_batch_size": 120, "num_epochs": None, "log_every": 50,
  }
  config_lib.apply_flags(c, flags, demo={
      **digits, "llta.train_steps": 300, "llta.role_train_steps": dict(demo_steps),
      "steps": sum(demo_steps.values()), "checkpoint_every": 100,
      "llta.num_images": 120, "llta.attack_batch": 120,
  }, smoke={
      **digits, "llta.train_steps": 3, "steps": 12, "checkpoint_every": 3, "log_every": 2,
      "batch_size": 16, "eval_batch_size": 32, "llta.num_images": 16, "llta.attack_batch": 8,
      "llta.steps": 2, "llta.attacks": ("mifgsm", "llta"),
      "llta.overrides": {"llta": {"search_epochs": 1, "search_samples": 2, "num_tasks": 1,
                                  "support_size": 2, "query_size": 1}},
      "models": ml_collections.ConfigDict({
          "surrogate": config_lib.model_block("resnet20", width_multiplier=0.25),
          "victim_cnn": config_lib.model_block("cnn_small", width_multiplier=0.5)}),
      "optims": ml_collections.ConfigDict({
          r: config_lib.optim_block(lr=0.05) for r in ("surrogate", "victim_cnn")}),
      # the victims' clean accuracy is in summary.json's transfer block; one eval is enough
      "evals": ml_collections.ConfigDict({
          "acc_surrogate": config_lib.eval_block(predict="classify_surrogate",
                                                 evaluators={"classification": {}})}),
  })
  return c
