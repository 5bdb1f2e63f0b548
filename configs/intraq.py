"""IntraQ: zero-shot quantization with intra-class heterogeneity (Zhong et al., CVPR 2022).

Pipeline (jaxvision/methods/intraq): [pretrain FP teacher] -> per synthesis variant in
`intraq.compare`: synthesize images from noise against the frozen teacher (no data) ->
inject W/A fake quantizers and calibrate activation ranges on the synthetic images
(the end-of-stage evaluation is plain PTQ) -> fine-tune with 20*20^2*KL + CE on the
synthetic images only. summary.json["intraq"] holds FP, PTQ, BN-only and IntraQ top-1
and the model size in bits before/after.

Variants (``--config=configs/intraq.py:<variant>[,demo|smoke]``), values from the
official code (spec shared/papers/intraq.md):
  resnet18_w4a4 (default), resnet18_w5a5, mobilenet_v1_w4a4, mobilenet_v1_w5a5,
  mobilenet_v2_w4a4, mobilenet_v2_w5a5
      ImageNet from pytorchcv checkpoints (--config.models.teacher.init.torch_checkpoint=...).
      Released settings: eps=1, MDC band [0, 2] -> SIL and MDC are inactive (BNS+LOR).
      Expected top-1 (paper): R18 W4A4 66.47 / W5A5 69.94; MV1 51.36 / 68.17;
      MV2 65.10 / 71.28.
  <imagenet variant>_paper
      Same with all three IntraQ terms active (eps=0.95, band [0.05, 0.8]; the PDF's
      ImageNet values are unverified, these are the released CIFAR-10 values).
  cifar10_w4a4, cifar10_w3a3, cifar100_w4a4, cifar100_w3a3
      ResNet-20 (projection shortcut 'B'); expected C10 91.49 / 77.07, C100 64.98 / 48.25.
  demo  (flag) embedded digits: trains the FP ResNet-20 (half width) first, then BN-only
        and IntraQ synthesis, W4A4 quantization and fine-tuning; a few minutes on 2 CPUs.
  smoke (flag) tiny CI run on 8 devices.

Baselines by config: `--config.intraq.finetune.steps=0` is PTQ only;
`--config.intraq.compare=bns,bns_ce,lor,lor_sil,intraq` runs the full ablation
(BN only -> +CE -> +LOR -> SIL instead of CE -> +MDC) in one command.

  python -m jaxvision.main --config=configs/intraq.py:demo --workdir=/tmp/intraq_demo
  python -m jaxvision.main --config=configs/intraq.py:resnet18_w4a4 --workdir=/tmp/iq_r18 \\
      --config.models.teacher.init.torch_checkpoint=resnet18-pytorchcv.pth --config.dataset.data_dir=~/tfds
"""
import ml_collections

from jaxvision import config_lib
from jaxvision.methods.intraq.config import defaults

IMAGENET_MODELS = ("resnet18", "mobilenet_v1", "mobilenet_v2")
VARIANTS = tuple(f"{m}_w{b}a{b}{p}" for m in IMAGENET_MODELS for b in (4, 5)
                 for p in ("", "_paper")) + tuple(
                     f"cifar{k}_w{b}a{b}" for k in (10, 100) for b in (4, 3))

# (eps_soft = targetPro, lambda_l = cosineMargin, lambda_u = cosineMargin_upper), spec §2.1
SYNTH_VALUES = {
    "imagenet": (1.0, 0.0, 2.0),
    "imagenet_paper": (0.95, 0.05, 0.8),  # [unverified] paper mode, see docstring
    "cifar10": (0.95, 0.05, 0.8),
    "cifar100": (0.6, 0.02, 1.0),
}


def get_config(arg=None):
  variant, flags = config_lib.parse_arg(arg, VARIANTS, default="resnet18_w4a4")
  c = config_lib.base_config()
  c.method = "intraq"
  c.intraq = defaults()
  # Roles: the FP teacher (pretrained or trained in the demo's pretrain stage) and its
  # quantized copy, the student, which is built from the teacher's architecture.
  c.models = ml_collections.ConfigDict({"teacher": config_lib.model_block("resnet18")})
  c.optims.teacher = config_lib.optim_block()
  ic = c.intraq
  bits = int(variant.split("_w")[1][0])
  ic.quant.w_bits = ic.quant.a_bits = bits
  c.checkpoint_every = 2000
  c.log_every = 50
  c.evals.eval.every_steps = 0
  # Fine-tuning: SGD Nesterov, momentum 0.9, wd 1e-4 on all student params. Milestones are
  # relative to fine-tuning start: the code's epoch indices count the 4 calibration epochs.
  c.optims.student.update(name="sgd", momentum=0.9, nesterov=True, weight_decay=1e-4,
                 schedule="multistep", gamma=0.1, warmup_epochs=0.0)
  if variant.startswith("cifar"):
    k = 10 if variant.startswith("cifar10_") else 100
    c.models.teacher.name = "resnet20"
    c.models.teacher.kwargs = {"shortcut": "B"}
    c.dataset.name = f"cifar{k}"
    c.batch_size, c.eval_batch_size = 256, 200
    c.optims.student.lr = 1e-4
    c.optims.student.milestones_epochs = (16, 36, 56)  # code: epochs 20, 40, 60
    eps, lo, hi = SYNTH_VALUES[f"cifar{k}"]
    ic.calib.batch_size = 256  # [code] CIFAR hocon batch
  else:
    c.models.teacher.name = variant.split("_w")[0]
    c.dataset.name = "imagenet2012"
    c.batch_size, c.eval_batch_size = 256, 250
    c.optims.student.lr = 1e-6
    c.optims.student.milestones_epochs = (96, 196, 346)  # code: epochs 100, 200, 350
    ic.finetune.batch_size = 16
    eps, lo, hi = SYNTH_VALUES["imagenet_paper" if variant.endswith("_paper") else "imagenet"]
  ic.synthesis.update(eps_soft=eps, lambda_l=lo, lambda_u=hi)
  c.dataset.augment = False  # real training data is never used (only for demo pretraining)

  demo_pretrain_optim = config_lib.optim_block(lr=0.05, weight_decay=5e-4, schedule="cosine")
  config_lib.apply_flags(c, flags, demo={
      "models.teacher.name": "resnet20", "models.teacher.kwargs": {"shortcut": "B", "width_multiplier": 0.5},
      "dataset.name": "digits", "dataset.augment": True, "batch_size": 64,
      "eval_batch_size": 120, "log_every": 25, "checkpoint_every": 500,
      "intraq.compare": "bns,intraq",
      "intraq.pretrain.steps": 400, "optims.teacher": demo_pretrain_optim,
      "intraq.synthesis.num_batches": 2, "intraq.synthesis.batch_size": 64,
      "intraq.synthesis.iters": 150, "intraq.synthesis.lr": 0.25,
      "intraq.synthesis.plateau_patience": 20,
      "intraq.synthesis.eps_soft": SYNTH_VALUES["cifar10"][0],
      "intraq.synthesis.lambda_l": SYNTH_VALUES["cifar10"][1],
      "intraq.synthesis.lambda_u": SYNTH_VALUES["cifar10"][2],
      "intraq.quant.w_bits": 4, "intraq.quant.a_bits": 4,
      "intraq.calib.steps": 40, "intraq.calib.batch_size": 32,
      "intraq.finetune.steps": 200, "intraq.finetune.iters_per_epoch": 50,
      "intraq.finetune.batch_size": 32, "optims.student.lr": 1e-5, "optims.student.milestones_epochs": (3,),
  }, smoke=config_lib.smoke_overrides(role="teacher", **{
      "dataset.num_train": 64, "dataset.num_eval": 32, "eval_batch_size": 16,
      "checkpoint_every": 5, "evals.eval.every_steps": 0,
      "intraq.compare": "intraq", "intraq.pretrain.steps": 2,
      "optims.teacher": demo_pretrain_optim,
      "intraq.synthesis.num_batches": 2, "intraq.synthesis.batch_size": 8,
      "intraq.synthesis.iters": 3, "intraq.synthesis.eps_soft": 0.9,
      "intraq.synthesis.lambda_l": 0.05, "intraq.synthesis.lambda_u": 0.8,
      "intraq.quant.w_bits": 4, "intraq.quant.a_bits": 4,
      "intraq.calib.steps": 2, "intraq.calib.batch_size": 8,
      "intraq.finetune.steps": 3, "intraq.finetune.iters_per_epoch": 2,
      "intraq.finetune.batch_size": 8, "optims.student.lr": 1e-3,
      "optims.student.milestones_epochs": ()}))
  return c
