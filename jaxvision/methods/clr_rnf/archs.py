"""Per-architecture rules: ranking units, FLOPs factors, and the surgery plan (spec §3).

An adapter knows, for one model family of `jaxvision.models`:
  units(model, flops_mode, image_size) -> [Unit]      what is ranked, n_l and f_l
  plan(model, keep, select, inherit_bn, **opts) -> Plan  which filters survive, how to slice

`select(filters [n, d], m, name) -> ascending int32 [m]` is RNF or an ablation selector.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from flax import nnx

from jaxvision.methods.clr_rnf import ranking
from jaxvision.methods.clr_rnf.rnf import kernel_to_filters
from jaxvision.methods.clr_rnf.surgery import Plan
from jaxvision.models.vgg import VGG16_POOL_AFTER

Selector = Callable[[np.ndarray, int, str], np.ndarray]
FLOPS_MODES = ("measured", "table")


@dataclasses.dataclass
class Unit:
  """One ranking unit: its weights are ranked jointly, it gets one keep count."""
  name: str
  weight: np.ndarray   # ranked weights (any shape; only |w| and the size matter)
  num_filters: int     # n_l
  f: float             # relative FLOPs factor


def _np(x) -> np.ndarray:
  """nnx.Variable or array -> host fp32 numpy (no device op, no compile)."""
  if isinstance(x, nnx.Variable):
    x = x.get_value() if hasattr(x, "get_value") else x.value
  return np.asarray(x, np.float32)


def _check_mode(flops_mode, table_ok: bool, name: str):
  if flops_mode not in FLOPS_MODES:
    raise ValueError(f"flops_mode {flops_mode!r} is unknown; use one of {FLOPS_MODES}.")
  if flops_mode == "table" and not table_ok:
    raise ValueError(f"flops_mode='table' needs the official {name} at default widths; "
                     "use flops_mode='measured' for other widths.")


def _filters(kernel, in_idx=None) -> np.ndarray:
  k = _np(kernel)
  if in_idx is not None:
    k = np.take(k, in_idx, axis=2)
  return np.asarray(kernel_to_filters(k))


class ChainArch:
  """Plain conv chains (VGG-16 CIFAR, cnn_small): every conv is ranked and pruned.

  Conv i's output set 'convs/i' slices conv i (out), BN i, conv i+1 (in) and, for the last
  conv, the classifier's input. inherit_bn=False re-initialises every BN, conv bias and the
  classifier (official cifar.py VGG behaviour).
  """

  def __init__(self, name: str, classifier: str, pool_after=()):
    self.name, self.classifier = name, classifier
    self.pool_after = tuple(pool_after)
    self.lam_key = name

  def units(self, model, flops_mode: str = "measured", image_size: int = 32) -> list[Unit]:
    widths = list(model.widths)
    if flops_mode == "table":
      _check_mode(flops_mode, self.name in ranking.OFFICIAL_FLOPS_CFG
                  and widths == _default(self.name), self.name)
      f = np.asarray(ranking.OFFICIAL_FLOPS_CFG[self.name], np.float64)
    else:
      _check_mode(flops_mode, True, self.name)
      f = self.flops_factors(model, image_size)
    return [Unit(f"convs/{i}", _np(c.kernel), int(w), float(f[i]))
            for i, (c, w) in enumerate(zip(model.convs, widths))]

  def flops_factors(self, model, image_size: int) -> np.ndarray:
    h, fl = int(image_size), []
    for i, c in enumerate(model.convs):
      kh, _, cin, cout = _np(c.kernel).shape
      s = int(c.strides[0]) if isinstance(c.strides, (tuple, list)) else int(c.strides)
      h = -(-h // s)
      fl.append(ranking.conv_macs(h, h, cin, cout, kh, c.bias is not None))
      if i in self.pool_after:
        h //= 2
    fl = np.asarray(fl, np.float64)
    return fl / fl[0]

  def plan(self, model, keep: dict, select: Selector, inherit_bn: bool = True, **_) -> Plan:
    sets, layers, reinit = {}, {}, {}
    prev = None
    for i, c in enumerate(model.convs):
      name = f"convs/{i}"
      sets[name] = select(_filters(c.kernel), int(keep[name]), name)
      layers[f"convs/{i}"] = (prev, name)
      layers[f"bns/{i}"] = (None, name)
      if not inherit_bn:
        reinit.update(_bn_reinit(f"bns/{i}"))
        if c.bias is not None:
          reinit[f"convs/{i}/bias"] = "zeros"
      prev = name
    layers[self.classifier] = (prev, None)
    if not inherit_bn:  # official VGG: Linear N(0, 0.01), bias 0
      reinit.update({f"{self.classifier}/kernel": "normal:0.01",
                     f"{self.classifier}/bias": "zeros"})
    widths = [len(sets[f"convs/{i}"]) for i in range(len(model.convs))]
    return Plan(widths, sets, layers, reinit)


def _bn_reinit(prefix: str) -> dict[str, str]:
  """Fresh BN: gamma 1, beta 0, running mean 0, running var 1."""
  return {f"{prefix}/scale": "ones", f"{prefix}/bias": "zeros", f"{prefix}/mean": "zeros",
          f"{prefix}/var": "ones"}


def _default(name):
  from jaxvision import models
  return models.default_widths(name)


class CifarResNetArch:
  """CIFAR ResNet-(6n+2), option-A shortcut: only each block's conv1 is ranked and pruned.

  Set 'layer{s}/{b}/conv1' slices conv1 (out), bn1 and conv2 (in). inherit_bn=False
  re-initialises every block's bn1 (official cifar.py); all else is inherited.
  """

  def __init__(self, name: str):
    self.name = name
    self.lam_key = name

  def _blocks(self, model):
    out = []
    for s in (1, 2, 3):
      for b, blk in enumerate(getattr(model, f"layer{s}")):
        out.append((f"layer{s}/{b}", blk))
    return out

  def units(self, model, flops_mode: str = "measured", image_size: int = 32) -> list[Unit]:
    if getattr(model, "shortcut", "A") != "A":
      raise ValueError("CLR-RNF prunes CIFAR ResNets with the parameter-free shortcut 'A'; "
                       "build the model with shortcut='A'.")
    n = len(model.layer1)
    stage_widths = list(model.stage_widths)
    if flops_mode == "table":
      ok = (self.name in ranking.OFFICIAL_FLOPS_CFG and stage_widths == [16, 32, 64]
            and list(model.widths) == _default(self.name))
      _check_mode(flops_mode, ok, self.name)
      f = np.asarray(ranking.OFFICIAL_FLOPS_CFG[self.name], np.float64)
    else:
      _check_mode(flops_mode, True, self.name)
      f = ranking.resnet_cifar_flops_factors(n, stage_widths, list(model.widths), image_size,
                                             int(_np(model.conv1.kernel).shape[2]))
    return [Unit(f"{p}/conv1", _np(blk.conv1.kernel), int(w), float(fl))
            for (p, blk), w, fl in zip(self._blocks(model), model.widths, f)]

  def plan(self, model, keep: dict, select: Selector, inherit_bn: bool = True, **_) -> Plan:
    sets, layers, reinit = {}, {}, {}
    for p, blk in self._blocks(model):
      name = f"{p}/conv1"
      sets[name] = select(_filters(blk.conv1.kernel), int(keep[name]), name)
      layers[f"{p}/conv1"] = (None, name)
      layers[f"{p}/bn1"] = (None, name)
      layers[f"{p}/conv2"] = (name, None)
      if not inherit_bn:
        reinit.update(_bn_reinit(f"{p}/bn1"))
    widths = [len(sets[f"{p}/conv1"]) for p, _ in self._blocks(model)]
    return Plan(widths, sets, layers, reinit)


class ImageNetResNetArch:
  """ImageNet ResNet-50 (torchvision v1.5 bottlenecks), spec §3.

  Units (36): conv1 and conv2 of every bottleneck, and per stage one group of all conv3
  weights (one shared rate q_s). f: the official hand-set table [2, 1.5, 1, 0.5] per stage
  (flops_mode='table', default) or conv FLOPs relative to the stem ('measured'; a stage's
  conv3 group uses the mean over its blocks). Widths: stem and out_s from q_1 / q_s.

  residual_select='code' (reproduction): RNF per conv1/conv2 on the original weights, per
  conv3 on weights sliced to its kept conv2 channels, RNF on the stem; downsample outputs a
  seeded random subset, its input sliced with the set entering the block; the next block's
  conv1 input and the fc use the last conv3 selection (channel identities along the residual
  stream are not consistent; only the counts match).
  residual_select='aligned': one set per stage (RNF on the stage's first conv3, sliced to
  its conv2 selection) for every conv3, downsample and the residual stream.
  inherit_bn=False re-initialises every BN. Deviation from the code (a bug there): the stem
  BN's running mean / var are sliced from the real statistics, not filled with beta.
  """

  def __init__(self, name: str):
    self.name = name
    self.lam_key = name

  @staticmethod
  def _stages(model):
    return [list(getattr(model, f"layer{s}")) for s in (1, 2, 3, 4)]

  def units(self, model, flops_mode: str = "table", image_size: int = 224) -> list[Unit]:
    _check_mode(flops_mode, True, self.name)
    stages = self._stages(model)
    if any(not hasattr(b, "conv3") for st in stages for b in st):
      raise ValueError(f"{self.name}: CLR-RNF rules cover bottleneck ResNets (resnet50).")
    h = 0
    if flops_mode == "measured":
      h = -(-int(image_size) // 2)
      stem = ranking.conv_macs(h, h, *_np(model.conv1.kernel).shape[2:], 7)
      h = -(-h // 2)  # maxpool
    units, k = [], 0
    for s, blocks in enumerate(stages):
      c3_f = []
      for b, blk in enumerate(blocks):
        fs = []
        stride = 2 if (s > 0 and b == 0) else 1
        for c, kk, hh in ((blk.conv1, 1, h), (blk.conv2, 3, -(-h // stride)),
                          (blk.conv3, 1, -(-h // stride))):
          if flops_mode == "measured":
            ci, co = _np(c.kernel).shape[2:]
            fs.append(ranking.conv_macs(hh, hh, ci, co, kk) / stem)
          else:
            fs.append(ranking.RESNET50_STAGE_TABLE[s])
        if flops_mode == "measured":
          h = -(-h // stride)
        p = f"layer{s + 1}/{b}"
        units.append(Unit(f"{p}/conv1", _np(blk.conv1.kernel), int(model.widths[1 + k]), fs[0]))
        units.append(Unit(f"{p}/conv2", _np(blk.conv2.kernel), int(model.widths[2 + k]), fs[1]))
        c3_f.append(fs[2])
        k += 2
      units.append(Unit(f"layer{s + 1}/conv3", np.concatenate(
          [_np(b.conv3.kernel).reshape(-1) for b in blocks]), int(model.widths[-4 + s]),
          float(np.mean(c3_f))))
    return units

  def plan(self, model, keep: dict, select: Selector, inherit_bn: bool = True,
           residual_select: str = "code", seed: int = 0, keep_fn=None, **_) -> Plan:
    """keep_fn(n, unit_name) -> floor(n (1 - p_unit)); used for the stem (stage 1's rate)."""
    if residual_select not in ("code", "aligned"):
      raise ValueError(f"residual_select={residual_select!r}; use 'code' or 'aligned'.")
    rng = np.random.default_rng(seed + 7919)
    sets, layers = {}, {}
    stages = self._stages(model)
    n_stem = int(_np(model.conv1.kernel).shape[3])
    if keep_fn is None:
      keep_fn = lambda n, u: max(1, (n * int(keep[u])) // int(model.widths[-4]))
    stem_keep = keep_fn(n_stem, "layer1/conv3")  # floor(64 (1 - q_1))
    sets["stem"] = select(_filters(model.conv1.kernel), stem_keep, "stem")
    layers["conv1"], layers["bn1"] = (None, "stem"), (None, "stem")
    prev = "stem"
    widths = [stem_keep]
    for s, blocks in enumerate(stages):
      out = int(keep[f"layer{s + 1}/conv3"])
      stage_set = None
      for b, blk in enumerate(blocks):
        p = f"layer{s + 1}/{b}"
        c1, c2, c3 = f"{p}/conv1", f"{p}/conv2", f"{p}/conv3"
        sets[c1] = select(_filters(blk.conv1.kernel), int(keep[c1]), c1)
        sets[c2] = select(_filters(blk.conv2.kernel), int(keep[c2]), c2)
        widths += [len(sets[c1]), len(sets[c2])]
        if residual_select == "code" or stage_set is None:
          sets[c3] = select(_filters(blk.conv3.kernel, sets[c2]), out, c3)
          stage_set = c3
        c3_set = c3 if residual_select == "code" else stage_set
        layers[c1], layers[f"{p}/bn1"] = (prev, c1), (None, c1)
        layers[c2], layers[f"{p}/bn2"] = (c1, c2), (None, c2)
        layers[c3], layers[f"{p}/bn3"] = (c2, c3_set), (None, c3_set)
        if blk.has_proj:
          ds = f"{p}/downsample"
          if residual_select == "code":
            n_ds = int(_np(blk.downsample_conv.kernel).shape[3])
            sets[ds] = np.sort(rng.choice(n_ds, size=out, replace=False)).astype(np.int32)
            ds_set = ds
          else:
            ds_set = stage_set
          layers[f"{p}/downsample_conv"] = (prev, ds_set)
          layers[f"{p}/downsample_bn"] = (None, ds_set)
        prev = c3_set
    layers["fc"] = (prev, None)
    widths += [int(keep[f"layer{s}/conv3"]) for s in (1, 2, 3, 4)]
    reinit = {}
    if not inherit_bn:
      for lp in layers:
        if lp.endswith("bn1") or lp.endswith("bn2") or lp.endswith("bn3") or lp.endswith("_bn"):
          reinit.update(_bn_reinit(lp))
    return Plan(widths, sets, layers, reinit)


class GoogLeNetArch:
  """CIFAR GoogLeNet: per Inception module the 3x3-branch reduce, the 5x5-branch reduce and
  the first 3x3 of the 5x5 branch are ranked with plain magnitude (f = 1) and pruned; RNF on
  the original weights, consumers' inputs sliced. inherit_bn=False re-initialises the BN
  of the pruned convs and zeroes their biases.
  """
  CONVS = (("b3_conv1", "b3_bn1", "b3_conv2"), ("b5_conv1", "b5_bn1", "b5_conv2"),
           ("b5_conv2", "b5_bn2", "b5_conv3"))

  def __init__(self, name: str = "googlenet"):
    self.name = name
    self.lam_key = name

  @staticmethod
  def _modules(model):
    from jaxvision.models.googlenet import NAMES
    return [(f"inception_{n}", getattr(model, f"inception_{n}")) for n in NAMES]

  def units(self, model, flops_mode: str = "measured", image_size: int = 32) -> list[Unit]:
    _check_mode(flops_mode, True, self.name)
    units, k = [], 0
    for p, mod in self._modules(model):
      for conv, _, _ in self.CONVS:
        units.append(Unit(f"{p}/{conv}", _np(getattr(mod, conv).kernel),
                          int(model.widths[k]), 1.0))
        k += 1
    return units

  def plan(self, model, keep: dict, select: Selector, inherit_bn: bool = True, **_) -> Plan:
    sets, layers, reinit, widths = {}, {}, {}, []
    for p, mod in self._modules(model):
      for conv, bn, consumer in self.CONVS:
        name = f"{p}/{conv}"
        sets[name] = select(_filters(getattr(mod, conv).kernel), int(keep[name]), name)
        widths.append(len(sets[name]))
        prev_in = layers.get(name, (None, None))[0]
        layers[name] = (prev_in, name)
        layers[f"{p}/{bn}"] = (None, name)
        layers[f"{p}/{consumer}"] = (name, None)
        if not inherit_bn:
          reinit.update(_bn_reinit(f"{p}/{bn}"))
          reinit[f"{name}/bias"] = "zeros"
    return Plan(widths, sets, layers, reinit)


ARCHS = {
    "vgg16": ChainArch("vgg16", "classifier", pool_after=VGG16_POOL_AFTER),
    "cnn_small": ChainArch("cnn_small", "fc"),
    **{f"resnet{d}": CifarResNetArch(f"resnet{d}") for d in (20, 32, 44, 56, 110)},
    "resnet50": ImageNetResNetArch("resnet50"),
    "googlenet": GoogLeNetArch("googlenet"),
}

# Default flops_mode per architecture ('table' where the official f is not FLOPs-derived).
DEFAULT_FLOPS_MODE = {"resnet50": "table"}


def get_arch(model_name: str):
  """The adapter for `model_name` (a jaxvision.models name)."""
  if model_name not in ARCHS:
    raise ValueError(f"CLR-RNF has no pruning rules for model '{model_name}'; supported: "
                     f"{sorted(ARCHS)}.")
  return ARCHS[model_name]
