"""Shared building blocks for the model zoo (NHWC, float32 params).

Every model uses plain `nnx.Conv` / `nnx.Linear` / `nnx.BatchNorm` submodules so that
methods can find and replace layers by walking the graph. BatchNorm uses momentum 0.9
(PyTorch 0.1) and epsilon 1e-5; the train/eval switch is passed at call time.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

# PyTorch `kaiming_normal_(mode='fan_out', nonlinearity='relu')` and the default mode='fan_in'.
kaiming_fan_out = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")
kaiming_fan_in = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")
zeros = nnx.initializers.zeros_init()


def resolve_dtype(dtype: Any) -> jnp.dtype:
  """'float32' | 'bfloat16' | jnp dtype | None -> jnp.dtype (None means float32)."""
  if dtype is None:
    return jnp.dtype(jnp.float32)
  try:
    return jnp.dtype(dtype)
  except TypeError as e:
    raise TypeError(f"dtype={dtype!r} is not a dtype; use 'float32' or 'bfloat16'.") from e


def scale_width(w: int, mult: float) -> int:
  """Scales a default width by `width_multiplier` (at least 1 channel)."""
  if mult <= 0:
    raise ValueError(f"width_multiplier must be > 0, got {mult}.")
  return max(1, int(round(w * mult)))


def check_widths(name: str, widths: Sequence[int] | None, expected_len: int,
                 fmt: str, allow_zero: bool = False) -> list[int] | None:
  """Validates a flat list of positive ints (>= 0 with `allow_zero`, e.g. a pruned-away
  block); returns it as a list (None passes)."""
  if widths is None:
    return None
  try:
    widths = [int(w) for w in widths]
  except (TypeError, ValueError) as e:
    raise TypeError(f"{name}: widths must be a flat list of ints ({fmt}); got {widths!r}.") from e
  if len(widths) != expected_len:
    raise ValueError(f"{name}: widths must have {expected_len} entries ({fmt}); "
                     f"got {len(widths)}. See {name} docstring or "
                     f"jaxvision.models.default_widths('{name}').")
  low = 0 if allow_zero else 1
  bad = [i for i, w in enumerate(widths) if w < low]
  if bad:
    raise ValueError(f"{name}: every width must be >= {low}; entries {bad} are not ({widths}).")
  return widths


def conv(cin: int, cout: int, k: int, *, rngs: nnx.Rngs, stride: int = 1, padding: int | None = None,
         bias: bool = False, groups: int = 1, dtype=jnp.float32, kernel_init=kaiming_fan_out,
         bias_init=zeros) -> nnx.Conv:
  """PyTorch-style Conv2d: symmetric integer padding (default k//2), HWIO kernel."""
  p = k // 2 if padding is None else padding
  return nnx.Conv(cin, cout, kernel_size=(k, k), strides=(stride, stride),
                  padding=((p, p), (p, p)), feature_group_count=groups, use_bias=bias,
                  kernel_init=kernel_init, bias_init=bias_init, dtype=dtype,
                  param_dtype=jnp.float32, rngs=rngs)


def bn(n: int, *, rngs: nnx.Rngs, dtype=jnp.float32) -> nnx.BatchNorm:
  """BatchNorm2d equivalent (momentum 0.9 == PyTorch 0.1, eps 1e-5, gamma 1, beta 0)."""
  return nnx.BatchNorm(n, momentum=0.9, epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32,
                       rngs=rngs)


def linear(cin: int, cout: int, *, rngs: nnx.Rngs, dtype=jnp.float32,
           kernel_init=None, bias_init=zeros) -> nnx.Linear:
  """Linear layer. Default init: PyTorch's nn.Linear default (U(+-1/sqrt(fan_in)))."""
  if kernel_init is None:
    kernel_init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
  return nnx.Linear(cin, cout, kernel_init=kernel_init, bias_init=bias_init, dtype=dtype,
                    param_dtype=jnp.float32, rngs=rngs)


def max_pool(x: jax.Array, k: int, stride: int, padding: int = 0) -> jax.Array:
  """PyTorch MaxPool2d (floor mode; padding with -inf). x: [B, H, W, C]."""
  p = ((padding, padding), (padding, padding))
  return nnx.max_pool(x, (k, k), strides=(stride, stride), padding=p)


def avg_pool(x: jax.Array, k: int, stride: int) -> jax.Array:
  """PyTorch AvgPool2d without padding. x: [B, H, W, C]."""
  return nnx.avg_pool(x, (k, k), strides=(stride, stride), padding="VALID")


def global_avg_pool(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C] (mean in float32 for stability, cast back)."""
  return jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(x.dtype)


def path_str(path: Sequence[Any]) -> str:
  """nnx path tuple -> 'a/0/b' (the key format used across jaxvision)."""
  return "/".join(str(p) for p in path)


def iter_layers(model: nnx.Module, types=(nnx.Conv, nnx.Linear, nnx.BatchNorm)):
  """Yields (path_str, module) for every submodule of the given types, in graph order."""
  for path, node in nnx.iter_graph(model):
    if isinstance(node, types):
      yield path_str(path), node


def conv_layers(model: nnx.Module) -> list[tuple[str, nnx.Conv]]:
  """All nnx.Conv submodules as (path, module); paths match `nnx.state` flat paths joined by '/'."""
  return list(iter_layers(model, (nnx.Conv,)))
