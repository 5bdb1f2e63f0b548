"""jaxvision.models: the model zoo (Flax NNX, NHWC, float32 params).

    model = build("resnet56", 10, rngs=nnx.Rngs(0), widths=None, shortcut="A")
    logits = model(x, train=False)          # x: [B, H, W, C]

Every model is registered in `jaxvision.core.registry.MODELS` under its name as a builder
`fn(num_classes, *, rngs, widths=None, **kw) -> nnx.Module` with attributes
`fn.default_widths(**kw)`, `fn.input_shape` (H, W, C) and `fn.cls`. Common kwargs:
`width_multiplier` (tiny demo sizes; ignored where `widths` is given), `dtype` (compute
dtype; params stay float32). Each instance exposes `.widths` (the structure it was built
from; the format is in each class docstring).
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

from flax import nnx

from jaxvision.core.registry import MODELS
from jaxvision.models import common
from jaxvision.models.common import conv_layers, iter_layers, path_str
from jaxvision.models.googlenet import GoogLeNet
from jaxvision.models.mobilenet import MobileNetV1, MobileNetV2
from jaxvision.models.resnet import ResNet
from jaxvision.models.resnet_cifar import CifarResNet
from jaxvision.models.small import CNNSmall
from jaxvision.models.torch_import import (CheckpointMismatchError, load_torch_checkpoint,
                                           maybe_load_pretrained, widths_from_state_dict)
from jaxvision.models.vgg import VGG


def register_model(name: str, cls: type, **fixed: Any):
  """Registers `cls` (an nnx.Module with `default_widths` staticmethod) under `name`.

  `fixed` kwargs (e.g. depth=56) are bound for this name and cannot be overridden.
  """

  def builder(num_classes: int, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
              **kw: Any) -> nnx.Module:
    clash = sorted(set(kw) & set(fixed))
    if clash:
      raise TypeError(f"model '{name}' fixes {clash}; use another registered name instead.")
    return cls(num_classes, rngs=rngs, widths=widths, **fixed, **kw)

  def default_widths_fn(**kw: Any) -> list:
    return cls.default_widths(**fixed, **kw)

  builder.__name__ = f"build_{name}"
  builder.__doc__ = cls.__doc__
  builder.default_widths = default_widths_fn
  builder.input_shape = tuple(cls.default_input_shape)
  builder.cls = cls
  builder.fixed_kwargs = dict(fixed)
  MODELS.register(name, builder)
  return builder


def build(name: str, num_classes: int, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
          **kw: Any) -> nnx.Module:
  """Builds registered model `name` with `num_classes` outputs (see module docstring)."""
  if not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
  return MODELS.get(name)(num_classes, rngs=rngs, widths=widths, **kw)


def default_widths(name: str, **kw: Any) -> list:
  """The default (unpruned) widths structure of model `name` (format: model docstring)."""
  return MODELS.get(name).default_widths(**kw)


def input_shape(name: str) -> tuple[int, int, int]:
  """Default input shape (H, W, C) of model `name` (32x32x3 CIFAR, 224x224x3 ImageNet)."""
  return MODELS.get(name).input_shape


def list_models() -> list[str]:
  return MODELS.names()


register_model("cnn_small", CNNSmall)
register_model("vgg16", VGG)
for _d in (20, 32, 44, 56, 110):
  register_model(f"resnet{_d}", CifarResNet, depth=_d)
register_model("googlenet", GoogLeNet)
for _d in (18, 34, 50):
  register_model(f"resnet{_d}", ResNet, depth=_d)
register_model("mobilenet_v1", MobileNetV1)
register_model("mobilenet_v2", MobileNetV2)

__all__ = [
    "build", "default_widths", "input_shape", "list_models", "register_model", "conv_layers",
    "iter_layers", "path_str", "common", "VGG", "CifarResNet", "CNNSmall", "GoogLeNet", "ResNet",
    "MobileNetV1", "MobileNetV2", "load_torch_checkpoint", "maybe_load_pretrained",
    "widths_from_state_dict", "CheckpointMismatchError",
]

# Wave-2 zoo modules register their models on import (each calls register_model at its end).
from jaxvision.models import drn, efficientnet, gan, laconvnet, lfpnet, sr  # noqa: E402,F401
