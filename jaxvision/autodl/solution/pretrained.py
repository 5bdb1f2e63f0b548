"""Pretrained weights from files the user supplies (meta-learner option `pretrained`).

* image: a torchvision `resnet18` state_dict (.pth) into the zoo's `resnet18`
  (needs image.width_multiplier = 1.0);
* video: a torchvision `mc3_18` state_dict into `VideoNet` (needs video.width_multiplier
  = 1.0 and video.blocks = [2, 2, 2, 2]).

Both go through `jaxvision.models.torch_import` (same key matching, layout conversion and
strict mismatch errors). A classifier head whose shape differs from the task's (e.g. 1000
ImageNet or 400 Kinetics classes) keeps its random init; a matching head is loaded.
"""
from __future__ import annotations

import os

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


def load_resnet18(model, path_or_state_dict, *, option: str = "image.pretrained") -> str:
  """Loads a torchvision resnet18 state_dict into the zoo ResNet-18 `model` (in place);
  returns a note on the head."""
  from jaxvision.models import torch_import  # pylint: disable=g-import-not-at-top
  from jaxvision.models.resnet import ResNet  # pylint: disable=g-import-not-at-top
  if not isinstance(model, ResNet) or model.depth != 18:
    raise ValueError(f"{option} holds torchvision resnet18 weights; the image backbone is "
                     f"{type(model).__name__}: keep 'resnet18' in image.backbones")
  full = ResNet.default_widths(18, 1.0)
  if list(model.widths) != full:
    raise ValueError(f"{option} needs the full-width ResNet-18 (widths {full}); got "
                     f"{model.widths}: set solution.image.width_multiplier=1.0")
  sd = torch_import.read_state_dict(path_or_state_dict)
  note = _head_to_torch(sd, model.fc)
  torch_import.load_torch_checkpoint(model, sd, naming="torchvision", strict=True)
  return note


def check_mc3_18(model, option: str = "video.pretrained"):
  """Refuses a VideoNet that is not MC3-18 (width 1, blocks [2, 2, 2, 2], RGB)."""
  from jaxvision.autodl.solution.nets import VideoNet  # pylint: disable=g-import-not-at-top
  full = VideoNet.default_widths(1.0)
  if tuple(model.blocks) != (2, 2, 2, 2) or list(model.widths) != full:
    raise ValueError(f"{option} holds torchvision mc3_18 weights but the video net has blocks "
                     f"{list(model.blocks)} and widths {model.widths}: set "
                     "solution.video.width_multiplier=1.0 and solution.video.blocks=[2,2,2,2]")
  if model.in_channels != 3:
    raise ValueError(f"{option}: mc3_18 takes 3 input channels, the net has {model.in_channels}")


def load_mc3_18(model, path_or_state_dict, *, option: str = "video.pretrained") -> str:
  """Loads a torchvision mc3_18 state_dict into a `VideoNet` (in place); returns a note."""
  from jaxvision.models import torch_import  # pylint: disable=g-import-not-at-top
  check_mc3_18(model, option)
  sd = dict(torch_import.read_state_dict(path_or_state_dict))
  note = _head_to_torch(sd, model.fc)
  torch_import.load_torch_checkpoint(model, sd, naming="torchvision", strict=True)
  return note
