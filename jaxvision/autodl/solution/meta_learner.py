"""Meta-learner: the offline-fixed knowledge of the solution (autodl.md §7).

Backbones, per-modality schedules, data-loading fractions and hyperparameters
live here as plain defaults (the winners fixed them offline on public data;
ours are fixed by hand, see the README). `options()` merges the JSON in the
JAXVISION_AUTODL_CONFIG env var (set by `jaxvision.autodl.run`) over them.

Pretrained weights: `image.pretrained` (a torchvision resnet18 state_dict .pth, needs
image.width_multiplier 1) and `video.pretrained` (a torchvision mc3_18 state_dict, needs
video.width_multiplier 1 and blocks [2,2,2,2]), or the `.npz` files that
`jaxvision.autodl.meta_train` writes at these options' widths (pretrained offline on
install-shipped glyph tasks; the demo does this); "" = random init (the default).
`speech.tr34_weights`: DeepWisdom's VoxCeleb Keras thin_resnet34.h5 (needs
tr34_width_multiplier 1, tr34_blocks [2,3,3,3] and tr34_features "stft"; the first 124
Keras layers are frozen when K >= 37, else 100).

Ablation switches (§7): `random_init` ((a) "random init instead of pretrained weights":
the `pretrained` / `tr34_weights` files are ignored), `last_checkpoint` ((b): predict with
the latest model instead of the validation ensemble), `load_all` ((c): read the whole
training set before the first prediction); `no_warmstart` (a widened: random init and
every train call restarts its learner from scratch).
"""
from __future__ import annotations

import copy
import json
import os

CONFIG_ENV = "JAXVISION_AUTODL_CONFIG"

DEFAULTS = {
    "seed": 0,
    "random_init": False,
    "no_warmstart": False,
    "last_checkpoint": False,
    "load_all": False,
    # time control (DeepWisdom: 180 s margin of 1200 s; call length 1 s, +2 s per test, cap 90 s)
    "blas_threads": 1,                # small matrices everywhere; None leaves BLAS alone
    "warmup_in_init": True,           # compile nets in Model.__init__ (not charged, §3)
    "margin_frac": 0.05,              # DeepWisdom: 0.15 (180 s of 1200 s)
    "call_seconds": (1.0, 2.0, 90.0),
    "val_frac": 0.1,
    "val_cap": 256,
    "ensemble_top_k": 3,
    "image": {
        "backbones": ["resnet18", "autodl_resnet9"],
        "switch_after_epochs": 2,       # ResNet-18 -> ResNet-9 (skipped when aspect ratio > 2)
        "width_multiplier": 0.25,       # 1.0 = the paper's widths; small on CPU
        "min_size": 32,                 # ours: upsample tiny images for ImageNet-stem nets
        "max_size": 64,
        "batch_size": 32,
        "steps_per_epoch": 30,
        "lr": 0.05, "momentum": 0.9, "weight_decay": 2.5e-4, "tau": 1.0,
        "hflip": True,
        "pretrained": "",               # torchvision resnet18 state_dict (.pth); "" = random init
        "quick_first": True,            # a linear model on pooled pixels for the 1st prediction
        "load_schedule": [512, 1024, 2048],
    },
    "video": {
        "frames": 8, "size": 32, "width_multiplier": 0.25, "blocks": [1, 1, 1, 1],
        "batch_size": 16, "steps_per_epoch": 20, "lr": 0.05, "momentum": 0.9,
        "weight_decay": 2.5e-4, "tau": 1.0, "quick_first": True,
        "load_schedule": [256, 512, 1024],
        "pretrained": "",               # torchvision mc3_18 state_dict (.pth); "" = random init
    },
    "speech": {
        "sample_rate": 16000, "clip_seconds": 5.0, "n_mels": 30, "n_fft": 1024,
        "hop_length": 640, "fmin": 20.0, "fmax": 8000.0,
        "load_fractions": [0.1, 0.2, 0.4, 0.3], "min_first": 200,
        # models by call (the last repeats): lr_liblinear, lr, lr_sag, lr_full (lbfgs, C=3), tr34
        "schedule_small_k": ["lr_liblinear", "lr_liblinear", "tr34"],   # K < 10
        "schedule_large_k": ["lr", "lr", "lr_sag", "tr34"],
        # ThinResNet-34 (nets.ThinResNet34) on standardised log-mel frames
        "tr34_n_mels": 40, "tr34_hop_length": 160,   # DeepWisdom: 257 STFT bins, 10 ms hop
        "tr34_frames": [32, 64, 128],     # crop length by TR34 round (grows; last repeats)
        "tr34_width_multiplier": 0.25,    # 1.0 = the Keras model's widths; small on CPU
        "tr34_blocks": [2, 3, 3, 3], "tr34_aggregation": "avg",   # or "gvlad" (GhostVLAD)
        "tr34_lr": 1.75e-3, "tr34_weight_decay": 1e-3, "tr34_batch_size": 32,   # Adam
        "tr34_first_epochs": [8, 14],     # first round: K <= 10, else; then per call:
        "tr34_epochs_per_call": 1,
        "tr34_max_rounds": 30,
        "tr34_weights": "",               # DeepWisdom's Keras thin_resnet34.h5; "" = random init
        "tr34_features": "logmel",        # or "stft": 257 |STFT| bins, as the Keras net was trained
    },
    "text": {
        "max_features": 20000, "max_fit_rows": 20000, "svm_calls": 2,
        "max_len": 128, "embed_dim": 64, "filters": 32, "kernel_sizes": [3, 4, 5],
        "batch_size": 32, "lr": 1e-3, "textcnn_epochs_per_call": 2, "ensemble_frac": 0.97,
        "load_schedule": [1000, 2000, 4000],
    },
    "tabular": {
        "load_schedule": [500, 500, 1000, 1000],
        "lgb": {"boosting_type": "gbdt", "num_leaves": 31, "learning_rate": 0.1, "max_bin": 110,
                "colsample_bytree": 0.8, "reg_alpha": 0.1, "reg_lambda": 0.1,
                "min_split_gain": 0.02, "min_child_samples": 20, "verbose": -1},
        "rounds": [10, 5, 40],           # first, per call, max
        "explore": ["lgb", "extra_trees", "logistic", "mlp"],
        "blend_std": 0.01,
    },
}


def _merge(base: dict, over: dict, path: str = "") -> dict:
  out = copy.deepcopy(base)
  for k, v in over.items():
    if k not in out:
      raise KeyError(f"unknown AutoDL solution option '{path}{k}'; valid: {sorted(out)}")
    out[k] = _merge(out[k], v, f"{path}{k}.") if isinstance(out[k], dict) else v
  return out


def options(overrides: dict | None = None) -> dict:
  """Defaults <- env JSON <- overrides (unknown keys raise KeyError naming them)."""
  opts = DEFAULTS
  env = os.environ.get(CONFIG_ENV)
  if env:
    opts = _merge(opts, json.loads(env))
  if overrides:
    opts = _merge(opts, overrides)
  check(opts)
  return copy.deepcopy(opts)


def check(opts: dict) -> dict:
  """Fails fast (ValueError naming the option) on pretrained files that cannot load."""
  from jaxvision.autodl.solution import pretrained  # noqa: PLC0415  (lazy: pulls in nets)
  for dom in ("image", "video"):
    path = opts[dom].get("pretrained", "")
    if not path:
      continue
    if not os.path.isfile(path):
      raise ValueError(f"{dom}.pretrained: no such file {path!r} (set \"\" for random init)")
    pretrained.check_file(dom, opts[dom])
  for key in ("schedule_small_k", "schedule_large_k"):
    bad = [m for m in opts["speech"][key] if m not in SPEECH_MODELS]
    if bad:
      raise ValueError(f"speech.{key}: unknown models {bad}; choose from {SPEECH_MODELS}")
  pretrained.check_tr34_options(opts["speech"])
  return opts


SPEECH_MODELS = ("lr_liblinear", "lr", "lr_sag", "lr_full", "tr34")


def weights(opts: dict) -> dict:
  """What the results state about initialisation: {net: 'random init' | 'weights file P'}."""
  out = {}
  for dom, net in (("image", "resnet18"), ("video", "mc3_18")):
    path = opts[dom].get("pretrained", "")
    out[net] = f"weights file {os.path.abspath(path)}" if path else "random init"
  out["autodl_resnet9"] = out["textcnn"] = "random init"
  from jaxvision.autodl.solution import pretrained  # noqa: PLC0415
  out["thin_resnet34"] = pretrained.describe_tr34(opts["speech"].get("tr34_weights", ""))
  if opts["no_warmstart"] or opts["random_init"]:
    abl = "no_warmstart" if opts["no_warmstart"] else "random_init"
    out = {k: f"random init ({abl} ablation)" for k in out}
  return out
