"""Config schema of the AutoDL driver (`configs/autodl.py` builds on it).

Keys: datasets (demo names, or dataset dirs via dataset_dirs), time_budget (T, s),
t0 (s), num_seeds, ablations (subset of ABLATIONS; each is run as its own
participant beside the full system), code (the submission), init_time_limit,
charge_init, data_seed, workdir-relative layout, meta_train (pretrain the image/video nets
offline with jaxvision.autodl.meta_train before the runs; on in the demo), solution
(overrides of jaxvision.autodl.solution.meta_learner.DEFAULTS).
"""
from __future__ import annotations

import ml_collections

from jaxvision import config_lib
from jaxvision.autodl.demo_data import DATASETS

VARIANTS = ("paper", "demo", "smoke")

ABLATIONS = ("random_init", "last_checkpoint", "load_all")   # §7 (a), (b), (c): "all"
EXTRA_ABLATIONS = ("no_warmstart",)   # (a) widened: also restart every learner at every call


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.datasets = ",".join(DATASETS)   # demo datasets (jaxvision.autodl.demo_data)
  c.dataset_dirs = ""               # or: comma-separated AutoDL dataset dirs (yours)
  c.time_budget = 1200.0
  c.t0 = 60.0
  c.num_seeds = 1
  c.ablations = ""                  # comma-separated subset of ABLATIONS, or "all"
  c.code = "jaxvision.autodl.solution"
  c.init_time_limit = 1200.0
  c.charge_init = False
  c.data_seed = 0
  c.jax_cache = True                # persistent XLA cache in workdir (init is not charged)
  # offline meta-training (jaxvision.autodl.meta_train): pretrain the image / video nets on
  # install-shipped source tasks once, before any run, and start every run from them
  c.meta_train = False
  c.meta_dir = ""                   # where the weights go; "" = <workdir>/meta
  c.meta_image_steps = 3000
  c.meta_video_steps = 1000
  c.solution = ml_collections.ConfigDict({"image": {}, "video": {}, "text": {}, "speech": {},
                                          "tabular": {}})
  return c


def check(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Fails fast on bad values, naming the key and the valid choices."""
  for name in filter(None, c.datasets.split(",")):
    if name not in DATASETS:
      raise ValueError(f"config.datasets: unknown dataset {name!r}; choose from {DATASETS}")
  for a in ablations(c):
    if a not in ABLATIONS + EXTRA_ABLATIONS:
      raise ValueError(f"config.ablations: unknown ablation {a!r}; choose from "
                       f"{ABLATIONS + EXTRA_ABLATIONS} or 'all' (= {','.join(ABLATIONS)})")
  if c.meta_train:
    for dom in ("image", "video"):
      if c.solution[dom].get("pretrained", ""):
        raise ValueError(f"config.meta_train writes solution.{dom}.pretrained; set "
                         f"config.meta_train=False to use your own file")
  if c.time_budget <= 0 or c.t0 <= 0 or c.num_seeds < 1:
    raise ValueError("config.time_budget and config.t0 must be > 0 and config.num_seeds >= 1")
  from jaxvision.autodl.solution import meta_learner  # pylint: disable=g-import-not-at-top
  meta_learner.options(solution_overrides(c))  # unknown solution keys raise KeyError
  return c


def ablations(c) -> tuple[str, ...]:
  return ABLATIONS if c.ablations == "all" else tuple(filter(None, c.ablations.split(",")))


def solution_overrides(c) -> dict:
  sol = c.solution.to_dict()
  return {k: v for k, v in sol.items() if v != {}}


def weights(c) -> dict:
  """How each net of the solution is initialised under config `c`: {net: 'random init' |
  'weights file PATH'} (from solution.image.pretrained / solution.video.pretrained)."""
  from jaxvision.autodl.solution import meta_learner  # pylint: disable=g-import-not-at-top
  return meta_learner.weights(meta_learner.options(solution_overrides(c)))


def get_config(arg=None) -> ml_collections.ConfigDict:
  """Variants (configs/autodl.py docstring): paper (default), demo, smoke."""
  variant, flags = config_lib.parse_arg(arg, VARIANTS, default="paper")
  c = base_config()
  if variant == "paper" and not flags:
    c.datasets = ""
    c.solution.image.width_multiplier = 1.0
    c.solution.video.width_multiplier = 1.0
    c.solution.video.blocks = [2, 2, 2, 2]
    c.solution.speech.tr34_width_multiplier = 1.0
    c.solution.speech.tr34_n_mels = 64
    c.solution.speech.tr34_frames = [125, 250, 500]   # DeepWisdom's lengths, 10 ms hop, 5 s cap
  if variant == "demo" or "demo" in flags:
    c.time_budget = 60.0
    c.meta_train = True
    c.num_seeds = 3
    c.ablations = "all"
    c.init_time_limit = 600.0
  if variant == "smoke" or "smoke" in flags:
    c.datasets = "wine,digits"
    c.time_budget = 10.0
    c.num_seeds = 1
    c.ablations = ""
    c.init_time_limit = 300.0
    c.solution.image.backbones = ["resnet18"]
    c.solution.image.width_multiplier = 0.125
  return check(c)
