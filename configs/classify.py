"""Dense classification baselines (the models the compression papers start from).

Variants (``--config=configs/classify.py:<variant>[,demo|smoke]``):
  resnet56  (default) ResNet-56 on CIFAR-10. Baseline recipe of clr_rnf.md §9.7:
            SGD momentum 0.9, lr 0.1 cosine, wd 5e-4, batch 128, 200 epochs,
            pad-4 crop + flip. Target ~93.3% top-1.
  vgg16     VGG-16 (CIFAR, conv bias + BN + one linear) same recipe. Target ~93.0%.
  demo      (flag) embedded scikit-learn digits (32x32x3), a ResNet-20 at half
            width, 300 steps: >=97% test accuracy in under 3 minutes on 2 CPU cores.
  smoke     (flag) tiny synthetic run for CI (8 devices, checkpoints, resume).

  python -m jaxvision.main --config=configs/classify.py:resnet56 --workdir=/tmp/r56 \\
      --config.dataset.data_dir=~/tensorflow_datasets
  python -m jaxvision.main --config=configs/classify.py:demo --workdir=/tmp/demo
"""
from jaxvision import config_lib

VARIANTS = ("resnet56", "vgg16")


def get_config(arg=None):
  variant, flags = config_lib.parse_arg(arg, VARIANTS, default="resnet56")
  c = config_lib.base_config()
  c.method = "classify"
  c.models.student.name = variant
  c.dataset.name = "cifar10"
  c.batch_size = 128
  c.eval_batch_size = 200
  c.num_epochs = 200.0
  c.optims.student.update(name="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine")
  c.checkpoint_every = 2000
  c.evals.eval.every_steps = 2000
  config_lib.apply_flags(c, flags, demo={
      "models.student.name": "resnet20", "models.student.kwargs": {"width_multiplier": 0.5},
      "dataset.name": "digits", "batch_size": 64, "eval_batch_size": 120,
      "num_epochs": None, "steps": 300, "optims.student.lr": 0.05, "optims.student.weight_decay": 5e-4,
      "log_every": 25, "checkpoint_every": 300, "evals.eval.every_steps": 0,
  }, smoke=config_lib.smoke_overrides())
  return c
