"""CLR-RNF: Pruning Networks with Cross-Layer Ranking & k-Reciprocal Nearest Filters
(Lin et al., TNNLS 2023; spec shared/papers/clr_rnf.md).

One run = dense stage (skipped when a pretrained checkpoint is given) -> one-shot prune
(CLR ranking + RNF selection + surgery) -> fine-tune. summary.json holds FLOPs / params before
and after (thop convention), accuracies before pruning / right after / after fine-tuning,
per-layer widths and kept filter indices; clr_rnf_widths.png plots the kept widths.

Variants (``--config=configs/clr_rnf.py:<variant>[,demo|smoke]``):
  vgg16             (default) CIFAR-10 VGG-16, pr_target 0.86, λ 0.5, BN/classifier re-init.
                    README: 14.73M -> 0.74M params (-94.95%), 314.04M -> 81.31M FLOPs
                    (-74.11%), 93.02 -> 93.32 top-1.
  resnet56          CIFAR-10 ResNet-56, pr 0.56, λ 10: 0.85M -> 0.39M, 126.56M -> 55.26M,
                    93.26 -> 93.27.
  resnet110         CIFAR-10 ResNet-110, pr 0.69, λ 5: 1.73M -> 0.53M, 254.99M -> 86.80M,
                    93.53 -> 93.71.
  googlenet         CIFAR-10 GoogLeNet, pr 0.91, plain magnitude (λ 0): 6.17M -> 2.18M,
                    1529.43M -> 491.54M, 95.03 -> 94.85.
  resnet50_020      ImageNet ResNet-50, pr 0.20, step lr: 16.92M / 2445.83M, 74.85 / 92.31.
  resnet50_044      ... pr 0.44, step lr: 9.00M / 1227.23M, 72.66 / 91.09.
  resnet50_044_cos  ... pr 0.44, cosine lr: 73.34 / 91.27 (the abstract's headline).
  resnet50_052      ... pr 0.52, step lr: 6.90M / 931.02M, 71.11 / 90.42.
  demo   (flag) embedded digits, VGG-16 at 1/4 width: dense 240 steps -> prune (pr 0.6,
         inherited BN) -> fine-tune 200 steps; a few minutes on 2 CPU cores.
  smoke  (flag) tiny synthetic run for CI (8 devices, checkpoint and resume).

CIFAR fine-tuning (cifar.py): SGD 0.9, lr 0.01, milestones [50, 100] x0.1, 150 epochs, wd 5e-3
(all params), batch 256. ImageNet: lr 0.1, batch 256, wd 1e-4, 90 epochs, 5-epoch linear
warm-up, then step (x0.1 at 30, 60, 80) or cosine (per step here; per epoch in the code).
Without a checkpoint the dense stage trains the baseline with spec §9.7's recipe (SGD lr 0.1
cosine, wd 5e-4, 200 epochs CIFAR; 90 epochs step for ImageNet).

  python -m jaxvision.main --config=configs/clr_rnf.py:vgg16 --workdir=/tmp/clr_vgg \\
      --config.dataset.data_dir=~/tensorflow_datasets --config.models.student.init.checkpoint=/ckpt/vgg16
  python -m jaxvision.main --config=configs/clr_rnf.py:resnet50_044_cos --workdir=/tmp/r50 \\
      --config.models.student.init.torch_checkpoint=resnet50-19c8e357.pth
  python -m jaxvision.main --config=configs/clr_rnf.py:demo --workdir=/tmp/clr_demo

Options (config.clr_rnf): pr_target; lam (None = paper's λ); ranking 'clr' | 'magnitude'
(λ=0 ablation) | 'uniform'; selection 'rnf' | 'l1' | 'random' (+ random_exclude_last, the
official quirk); flops_mode None | 'measured' | 'table'; inherit_bn; residual_select 'code' |
'aligned' (ResNet-50); seed; dense_epochs / dense_steps; dense_optim.
"""

# The :smoke run (train, eval, checkpoint, resume) is tested by this file; the
# generic tests/configs smoke test does not run it a second time.
SMOKE_TESTED_BY = "tests/methods/clr_rnf/test_clr_rnf_method.py"
from jaxvision import config_lib
from jaxvision.methods.clr_rnf.config import defaults

CIFAR = {"vgg16": 0.86, "resnet56": 0.56, "resnet110": 0.69, "googlenet": 0.91}
IMAGENET = {"resnet50_020": (0.20, "step"), "resnet50_044": (0.44, "step"),
            "resnet50_044_cos": (0.44, "cosine"), "resnet50_052": (0.52, "step")}
VARIANTS = tuple(CIFAR) + tuple(IMAGENET)


def get_config(arg=None):
  variant, flags = config_lib.parse_arg(arg, VARIANTS, default="vgg16")
  c = config_lib.base_config()
  c.method = "clr_rnf"
  c.clr_rnf = defaults()
  c.optims.dense = config_lib.optim_block()  # the dense (pre-pruning) stage
  if variant in CIFAR:
    c.models.student.name = variant
    if variant.startswith("resnet"):
      c.models.student.kwargs = {"shortcut": "A"}
    c.dataset.name = "cifar10"
    c.batch_size = 256
    c.eval_batch_size = 200
    c.num_epochs = 150.0
    c.optims.student.update(name="sgd", lr=0.01, momentum=0.9, nesterov=False, weight_decay=5e-3,
                   schedule="multistep", milestones_epochs=(50, 100), gamma=0.1)
    c.clr_rnf.pr_target = CIFAR[variant]
    c.clr_rnf.inherit_bn = variant == "googlenet"  # cifar.py re-inits VGG / ResNet bn
    c.clr_rnf.dense_epochs = 200.0
  else:
    pr, sched = IMAGENET[variant]
    c.models.student.name = "resnet50"
    c.dataset.name = "imagenet2012"
    c.batch_size = 256
    c.eval_batch_size = 256
    c.num_epochs = 90.0
    c.optims.student.update(name="sgd", lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4,
                   schedule="multistep" if sched == "step" else "cosine",
                   milestones_epochs=(30, 60, 80) if sched == "step" else (), gamma=0.1,
                   warmup_epochs=5.0, label_smoothing=0.0)
    c.clr_rnf.pr_target = pr
    c.clr_rnf.inherit_bn = True
    c.clr_rnf.dense_epochs = 90.0
    c.optims.dense.update(lr=0.1, weight_decay=1e-4, schedule="multistep",
                                 milestones_epochs=(30, 60, 80))
  c.evals.eval.every_steps = 2000
  c.checkpoint_every = 2000
  config_lib.apply_flags(c, flags, demo={
      "models.student.name": "vgg16", "models.student.kwargs": {"width_multiplier": 0.25},
      "dataset.name": "digits", "batch_size": 64, "eval_batch_size": 120,
      "num_epochs": None, "steps": 200, "optims.student.lr": 0.02, "optims.student.weight_decay": 5e-4,
      "optims.student.schedule": "cosine", "optims.student.milestones_epochs": (), "optims.student.warmup_epochs": 0.0,
      "clr_rnf.pr_target": 0.6, "clr_rnf.inherit_bn": True, "clr_rnf.dense_epochs": None,
      "clr_rnf.dense_steps": 240, "optims.dense.lr": 0.05,
      "optims.dense.milestones_epochs": (), "optims.dense.schedule": "cosine",
      "log_every": 20, "checkpoint_every": 1000, "evals.eval.every_steps": 0,
  }, smoke=config_lib.smoke_overrides(**{
      "steps": 4, "optims.student.schedule": "constant", "optims.student.milestones_epochs": (),
      "optims.student.warmup_epochs": 0.0, "clr_rnf.pr_target": 0.5, "clr_rnf.dense_epochs": None,
      "clr_rnf.dense_steps": 4, "optims.dense.milestones_epochs": (), "evals.eval.every_steps": 0}))
  return c
