"""Pretrained weights from files the user supplies (options `pretrained`, `tr34_weights`).

* image: a torchvision `resnet18` state_dict (.pth) into the zoo's `resnet18` (needs
  image.width_multiplier = 1.0), or the `.npz` `jaxvision.autodl.meta_train` writes in the
  same layout at the options' width;
* video: a torchvision `mc3_18` state_dict into `VideoNet` (needs video.width_multiplier
  = 1.0 and video.blocks = [2, 2, 2, 2]), or `meta_train`'s `.npz` at the options' widths;
* speech: DeepWisdom's Keras `thin_resnet34.h5` (VGGVox resnet34s, read with h5py) into
  `nets.ThinResNet34` (`load_keras_tr34`; layer mapping and freezing rule below).

The torch files go through `jaxvision.models.torch_import` (same key matching, layout conversion and
strict mismatch errors). A classifier head whose shape differs from the task's (e.g. 1000
ImageNet or 400 Kinetics classes) keeps its random init; a matching head is loaded.
"""
from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
from flax import nnx

RANDOM_INIT = "random init"


def describe(path: str) -> str:
  """What the results should state for option value `path`."""
  return f"weights file {os.path.abspath(path)}" if path else RANDOM_INIT


def _head_to_torch(sd: dict, fc: nnx.Linear, key: str = "fc") -> str:
  """Makes `sd`'s head agree with `fc`: keeps a matching checkpoint head, otherwise puts
  the net's own (random) head in torch layout so a strict load checks everything else."""
  cin, cout = fc.kernel.get_value().shape
  has_bias = fc.bias is not None and fc.bias.get_value() is not None
  w = sd.get(f"{key}.weight")
  if w is not None and tuple(int(s) for s in w.shape) == (cout, cin):
    if not has_bias:
      sd.pop(f"{key}.bias", None)
      return "head loaded (checkpoint bias dropped: the net's head has none)"
    return "head loaded"
  sd[f"{key}.weight"] = np.asarray(fc.kernel.get_value()).T
  sd.pop(f"{key}.bias", None)
  if has_bias:
    sd[f"{key}.bias"] = np.asarray(fc.bias.get_value())
  got = None if w is None else tuple(int(s) for s in w.shape)
  return f"head random init (checkpoint head {got}, task head {(cout, cin)})"


def _shape(v) -> tuple[int, ...]:
  return tuple(int(s) for s in v.shape)


def resnet18_widths(sd) -> list[int]:
  """The widths list (zoo `ResNet` order) of a torchvision-layout resnet18 state_dict."""
  from jaxvision.models import torch_import  # pylint: disable=g-import-not-at-top
  return torch_import.widths_from_state_dict("resnet18", sd, naming="torchvision")


def mc3_arch(sd) -> tuple[list[int], tuple[int, ...]]:
  """(widths [stem, s1..s4], blocks per stage) of a torchvision-layout mc3 state_dict."""
  try:
    widths = [_shape(sd["stem.0.weight"])[0]] + [
        _shape(sd[f"layer{s}.0.conv1.0.weight"])[0] for s in range(1, 5)]
  except KeyError as e:
    raise ValueError(f"not a torchvision mc3_18-layout state_dict: key {e.args[0]!r} is "
                     "missing") from None
  blocks = tuple(len({k.split(".")[1] for k in sd if k.startswith(f"layer{s}.")})
                 for s in range(1, 5))
  return widths, blocks


def _refuse(option: str, what: str, got, want, fix: str):
  raise ValueError(f"{option} holds {what} {got}; the net built from the options has {want}: "
                   f"set {fix}")


def check_resnet18(widths: list[int], got: list[int], option: str = "image.pretrained"):
  if list(got) != list(widths):
    _refuse(option, "a ResNet-18 of widths", list(got), list(widths),
            f"solution.image.width_multiplier={got[0] / 64:g}")


def check_mc3(widths, blocks, got_widths, got_blocks, option: str = "video.pretrained"):
  if list(got_widths) != list(widths) or tuple(got_blocks) != tuple(blocks):
    _refuse(option, "an MC3 of (widths, blocks)", (list(got_widths), list(got_blocks)),
            (list(widths), list(blocks)),
            f"solution.video.width_multiplier={got_widths[0] / 64:g} and "
            f"solution.video.blocks=[{','.join(str(b) for b in got_blocks)}]")


def check_file(domain: str, d: dict):
  """Fails fast (ValueError naming the option and the fix) when the `pretrained` file of
  `domain` ('image' | 'video', options `d`) cannot load into the net the options build."""
  from jaxvision.models import torch_import  # pylint: disable=g-import-not-at-top
  from jaxvision.models.resnet import ResNet  # pylint: disable=g-import-not-at-top
  option = f"{domain}.pretrained"
  sd = torch_import.read_state_dict(d["pretrained"])
  if domain == "image":
    check_resnet18(ResNet.default_widths(18, d["width_multiplier"]), resnet18_widths(sd), option)
  else:
    from jaxvision.autodl.solution.nets import VideoNet  # pylint: disable=g-import-not-at-top
    check_mc3(VideoNet.default_widths(d["width_multiplier"]), tuple(d["blocks"]), *mc3_arch(sd),
              option=option)


def load_resnet18(model, path_or_state_dict, *, option: str = "image.pretrained") -> str:
  """Loads a torchvision-layout resnet18 state_dict (torchvision's own at width 1, or one
  `meta_train` wrote at the demo's width) into the zoo ResNet-18 `model` (in place);
  returns a note on the head."""
  from jaxvision.models import torch_import  # pylint: disable=g-import-not-at-top
  from jaxvision.models.resnet import ResNet  # pylint: disable=g-import-not-at-top
  if not isinstance(model, ResNet) or model.depth != 18:
    raise ValueError(f"{option} holds torchvision resnet18 weights; the image backbone is "
                     f"{type(model).__name__}: keep 'resnet18' in image.backbones")
  sd = torch_import.read_state_dict(path_or_state_dict)
  check_resnet18(model.widths, resnet18_widths(sd), option)
  note = _head_to_torch(sd, model.fc)
  torch_import.load_torch_checkpoint(model, sd, naming="torchvision", strict=True)
  return note


def load_mc3_18(model, path_or_state_dict, *, option: str = "video.pretrained") -> str:
  """Loads a torchvision-layout mc3 state_dict (torchvision's mc3_18, or one `meta_train`
  wrote at the demo's widths and blocks) into a `VideoNet` (in place); returns a note."""
  from jaxvision.models import torch_import  # pylint: disable=g-import-not-at-top
  sd = dict(torch_import.read_state_dict(path_or_state_dict))
  check_mc3(model.widths, model.blocks, *mc3_arch(sd), option=option)
  if model.in_channels != 3:
    raise ValueError(f"{option}: mc3 takes 3 input channels, the net has {model.in_channels}")
  note = _head_to_torch(sd, model.fc)
  torch_import.load_torch_checkpoint(model, sd, naming="torchvision", strict=True)
  return note


# ------------------------------------------------------------------ Keras ThinResNet-34 (speech)
# DeepWisdom's speech solution loads `thin_resnet34.h5` (VGGVox resnet34s, GhostVLAD 8+2,
# 512-d fc6; Keras 2.2.4) by layer name into `vggvox_resnet2d_icassp(mode='pretrain')`.
# Keras layer names -> our ThinResNet34 module paths:
#   conv1_1/3x3_s1[/bn]                       -> conv1, bn1
#   conv{s}_{b}_1x1_reduce | _3x3 | _1x1_increase | _1x1_proj [/bn]  (s 2..5, b a,b,c)
#        -> layers/i/{conv1|conv2|conv3|proj}, layers/i/{bn1|bn2|bn3|proj_bn} (i: block index)
#   x_fc (7x1 conv + bias)                    -> x_fc
#   gvlad_center_assignment (7x1 conv + bias) -> assign      (aggregation 'gvlad')
#   gvlad_pool (centers [K+G, 512])           -> centers     (aggregation 'gvlad')
#   fc6 (Dense 8*512 -> 512 + bias)           -> fc6         (aggregation 'gvlad')
#   prediction (Dense, no bias)               -> fc when its shape matches the task
# Conv kernels are HWIO in both; BN [gamma, beta, moving_mean, moving_variance] ->
# [scale, bias, mean, var] (epsilon 1e-3 in both: ThinResNet34.bn_epsilon).
# Padding: Keras 'same' on the stride-1 7x7/3x3 convs = symmetric k//2 (ours); the
# (stride-2) 1x1 convs, x_fc and both max pools are 'valid' in both. The weights were
# trained on 257 |STFT| bins standardised per frame: speech.tr34_features='stft'.
# Not imported: Keras BN momentum 0.99 (ours 0.9, training only).
TR34_FILE = "keras thin_resnet34.h5"
TR34_FROZEN_LAYERS = (124, 100)   # DeepWisdom: INIT_BRZ_L_NUM (K >= 37), INIT_BRZ_L_NUM_WILD
TR34_FREEZE_MIN_K = 37            # CLASS_NUM_THS
_KERAS_VAR = {"conv": ("kernel",), "conv_b": ("kernel", "bias"), "dense": ("kernel", "bias"),
              "bn": ("gamma", "beta", "moving_mean", "moving_variance"), "vlad": ("centers",)}
_OURS = {"kernel": "kernel", "bias": "bias", "gamma": "scale", "beta": "bias",
         "moving_mean": "mean", "moving_variance": "var", "centers": None}


def keras_tr34_layers(blocks=(2, 3, 3, 3), aggregation: str = "gvlad") -> list[tuple]:
  """DeepWisdom's Keras TR34 (pretrain mode) as `model.layers` lists it: [(keras name or
  '<kind>' for weightless layers, kind, our module path or None)].

  Keras 2.2.4 orders a functional model's layers by depth from the input, ties broken by
  the depth-first order from the output (main branch before the projection): a conv block
  reads reduce, reduce/bn, relu, 3x3, 3x3/bn, relu, increase, proj, increase/bn, proj/bn,
  add, relu. With blocks (2, 3, 3, 3) `mpool2` is layer 123, so the first 124 layers are
  the whole trunk and the first 100 end at conv5_a_1x1_increase/bn (conv5_a_1x1_proj
  frozen, its BN not)."""
  out = [("<input>", "input", None), ("conv1_1/3x3_s1", "conv", "conv1"),
         ("conv1_1/3x3_s1/bn", "bn", "bn1"), ("<relu>", "relu", None), ("<maxpool>", "pool", None)]
  i = 0
  for s, n in enumerate(blocks):
    for b in range(n):
      c = f"conv{s + 2}_{'abcdefghij'[b]}"
      p = f"layers/{i}"
      out += [(f"{c}_1x1_reduce", "conv", f"{p}/conv1"), (f"{c}_1x1_reduce/bn", "bn", f"{p}/bn1"),
              ("<relu>", "relu", None),
              (f"{c}_3x3", "conv", f"{p}/conv2"), (f"{c}_3x3/bn", "bn", f"{p}/bn2"),
              ("<relu>", "relu", None), (f"{c}_1x1_increase", "conv", f"{p}/conv3")]
      if b == 0:
        out += [(f"{c}_1x1_proj", "conv", f"{p}/proj"),
                (f"{c}_1x1_increase/bn", "bn", f"{p}/bn3"),
                (f"{c}_1x1_proj/bn", "bn", f"{p}/proj_bn")]
      else:
        out += [(f"{c}_1x1_increase/bn", "bn", f"{p}/bn3")]
      out += [("<add>", "add", None), ("<relu>", "relu", None)]
      i += 1
  out += [("mpool2", "pool", None), ("x_fc", "conv_b", "x_fc")]
  if aggregation == "gvlad":
    out += [("gvlad_center_assignment", "conv_b", "assign"), ("gvlad_pool", "vlad", "centers"),
            ("fc6", "dense", "fc6")]
  return out


def tr34_frozen_count(num_classes: int) -> int:
  """DeepWisdom: freeze the first 124 Keras layers when K >= 37, else the first 100."""
  return TR34_FROZEN_LAYERS[0 if num_classes >= TR34_FREEZE_MIN_K else 1]


def tr34_frozen_paths(model, n_layers: int) -> list[str]:
  """Our module paths of the weighted layers among the first `n_layers` Keras layers
  (NetTrainer(frozen=...))."""
  layers = keras_tr34_layers(model.blocks, model.aggregation)[:n_layers]
  return [p for _, _, p in layers if p is not None]


def _require_h5py():
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("reading Keras .h5 weights needs h5py: "
                      "pip install 'jaxvision[autodl]'") from e
  return h5py


def _str(v) -> str:
  return v.decode("utf8") if isinstance(v, bytes) else str(v)


def read_keras_h5(path: str) -> dict[str, list[tuple[str, np.ndarray]]]:
  """A Keras 2 weights file (save_weights, or a full-model save's `model_weights`) ->
  {layer name: [(weight name, array), ...]} for the layers that hold weights."""
  h5py = _require_h5py()
  if not os.path.isfile(path):
    raise ValueError(f"speech.tr34_weights: no such file {path!r} (set \"\" for random init)")
  with h5py.File(path, "r") as f:
    g = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
    if "layer_names" not in g.attrs:
      raise ValueError(f"{path} is not a Keras weights file (no 'layer_names' attribute)")
    out = {}
    for ln in (_str(n) for n in g.attrs["layer_names"]):
      names = [_str(n) for n in g[ln].attrs.get("weight_names", [])]
      if names:
        out[ln] = [(n, np.asarray(g[ln][n])) for n in names]
  return out


def check_tr34(model, option: str = "speech.tr34_weights"):
  """Refuses a ThinResNet34 whose layout cannot take the Keras resnet34s weights."""
  from jaxvision.autodl.solution import nets  # pylint: disable=g-import-not-at-top
  TR34_BLOCKS, KERAS_BN_EPSILON = nets.TR34_BLOCKS, nets.KERAS_BN_EPSILON
  if tuple(model.blocks) != TR34_BLOCKS:
    raise ValueError(f"{option} holds the Keras resnet34s (blocks {list(TR34_BLOCKS)}); the net "
                     f"has {list(model.blocks)}: set speech.tr34_blocks=[2,3,3,3]")
  if model.rows != 7:
    raise ValueError(f"{option}: the Keras x_fc spans 7 frequency rows (257 STFT bins); "
                     f"n_freq {model.n_freq} leaves {model.rows}: set speech.tr34_features="
                     "'stft' (257 bins, as trained) or speech.tr34_n_mels between 226 and 257")
  if model.bn_epsilon != KERAS_BN_EPSILON:
    raise ValueError(f"{option}: Keras BatchNorm epsilon is {KERAS_BN_EPSILON}, the net uses "
                     f"{model.bn_epsilon}: build ThinResNet34 with bn_epsilon={KERAS_BN_EPSILON}")


def _set(var, arr: np.ndarray, where: str):
  want = tuple(var.get_value().shape)
  if tuple(arr.shape) != want:
    raise ValueError(f"Keras weight {where} has shape {tuple(arr.shape)}, the net expects "
                     f"{want} (the file needs speech.tr34_width_multiplier=1.0 and, for "
                     "GhostVLAD, 8+2 clusters)")
  var.set_value(jnp.asarray(np.ascontiguousarray(arr), dtype=var.get_value().dtype))


def _module(model, path: str):
  m = model
  for part in path.split("/"):
    m = m[int(part)] if part.isdigit() else getattr(m, part)
  return m


def load_keras_tr34(model, path_or_weights, *, option: str = "speech.tr34_weights") -> str:
  """Loads DeepWisdom's Keras `thin_resnet34.h5` into a `nets.ThinResNet34` (in place;
  mapping above); returns a note on the head.

  Strict: a missing trunk layer, a layer we do not know, a wrong weight count or order
  (Keras names checked where standard) or a mis-shaped array raise ValueError naming it.
  Aggregation 'gvlad' (8+2 clusters, as DeepWisdom) takes the whole embedding; 'avg'
  takes the trunk and x_fc and keeps its fc6 random (the GhostVLAD layers are skipped).
  The Keras `prediction` layer loads into `fc` only when its shape matches the task's."""
  check_tr34(model, option)
  w = read_keras_h5(path_or_weights) if isinstance(path_or_weights, (str, os.PathLike)) else (
      dict(path_or_weights))
  layers = [l for l in keras_tr34_layers(model.blocks, model.aggregation) if l[2] is not None]
  gvlad_names = ("gvlad_center_assignment", "gvlad_pool", "fc6")
  known = {l[0] for l in layers} | {"prediction"} | set(gvlad_names)
  unexpected = sorted(set(w) - known)
  if unexpected:
    raise ValueError(f"{option}: unexpected layers {unexpected} (not in the Keras resnet34s "
                     "with GhostVLAD); is this DeepWisdom's thin_resnet34.h5?")
  missing = [l[0] for l in layers if l[0] not in w]
  if missing:
    raise ValueError(f"{option}: missing layers {missing} in the weights file")
  for name, kind, path in layers:
    got, want = w[name], _KERAS_VAR[kind]
    if len(got) != len(want):
      raise ValueError(f"{option}: layer {name} has {len(got)} weights "
                       f"{[n for n, _ in got]}, expected {list(want)}")
    for (wname, arr), key in zip(got, want):
      base = wname.rsplit("/", 1)[-1].split(":")[0]
      if base in _OURS and base != key:
        raise ValueError(f"{option}: layer {name} weight {wname} where {key} was expected")
      var = getattr(model, "centers") if kind == "vlad" else getattr(_module(model, path),
                                                                      _OURS[key])
      _set(var, arr, f"{name}/{key}")
  notes = []
  if model.aggregation != "gvlad":
    notes.append(f"aggregation {model.aggregation}: GhostVLAD layers and fc6 skipped, fc6 "
                 "random init")
  pred = w.get("prediction")
  want = tuple(model.fc.kernel.get_value().shape)
  if pred and len(pred) == 1 and tuple(pred[0][1].shape) == want:
    _set(model.fc.kernel, pred[0][1], "prediction/kernel")
    notes.append("head loaded")
  else:
    got = tuple(pred[0][1].shape) if pred else None
    notes.append(f"head random init (file prediction {got}, task head {want})")
  return "; ".join(notes)


def describe_tr34(path: str, num_classes: int | None = None) -> str:
  """What the results state for speech.tr34_weights = `path` ('' = random init)."""
  if not path:
    return RANDOM_INIT
  out = f"{TR34_FILE} (weights file {os.path.abspath(path)}"
  if num_classes is not None:
    out += f"; first {tr34_frozen_count(num_classes)} Keras layers frozen"
  return out + ")"


def check_tr34_options(speech: dict):
  """Fails fast (ValueError naming the option) on a speech.tr34_weights that cannot load."""
  path = speech.get("tr34_weights", "")
  if not path:
    return
  if not os.path.isfile(path):
    raise ValueError(f"speech.tr34_weights: no such file {path!r} (set \"\" for random init)")
  from jaxvision.autodl.solution.nets import tr34_freq_rows  # pylint: disable=g-import-not-at-top
  bad = []
  if speech["tr34_width_multiplier"] != 1.0:
    bad.append("speech.tr34_width_multiplier=1.0")
  if list(speech["tr34_blocks"]) != [2, 3, 3, 3]:
    bad.append("speech.tr34_blocks=[2,3,3,3]")
  n_freq = 257 if speech.get("tr34_features") == "stft" else int(speech["tr34_n_mels"])
  if tr34_freq_rows(n_freq) != 7:
    bad.append("speech.tr34_features='stft'")
  if bad:
    raise ValueError("speech.tr34_weights needs the Keras resnet34s layout: set "
                     + " and ".join(bad))
