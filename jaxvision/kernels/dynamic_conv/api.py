"""`dynamic_conv` / `dynamic_conv_per_example`: public entry points."""
from __future__ import annotations

import jax.numpy as jnp

from jaxvision.kernels import _dispatch
from jaxvision.kernels.dynamic_conv import pallas_gpu, pallas_tpu
from jaxvision.kernels.dynamic_conv.config import DEFAULT_CONFIG, PREFERRED, DynamicConvConfig
from jaxvision.kernels.dynamic_conv.reference import (dynamic_conv_per_example_reference,
                                                      dynamic_conv_reference)

_NO_TPU_PER_EXAMPLE = ("the Mosaic TPU kernel is per-pixel only (per-example kernels are a "
                       "grouped conv XLA already tiles well); use 'xla'")


def _check_common(op, x, kernels, kernel_size, groups, dilation):
  if x.ndim != 4:
    raise ValueError(f"{op}: x must be [B,H,W,C] (NHWC), got shape {x.shape}.")
  for name, a in (("x", x), ("kernels", kernels)):
    if not jnp.issubdtype(a.dtype, jnp.floating):
      raise TypeError(f"{op}: {name} must be floating, got {a.dtype}.")
  if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
    raise ValueError(f"{op}: kernel_size must be an odd int >= 1 ('SAME' padding), "
                     f"got {kernel_size!r}.")
  if not isinstance(groups, int) or groups < 1 or x.shape[3] % groups:
    raise ValueError(f"{op}: groups={groups!r} must be a positive int dividing "
                     f"C={x.shape[3]} (channel c uses group c mod groups).")
  if not isinstance(dilation, int) or dilation < 1:
    raise ValueError(f"{op}: dilation must be an int >= 1, got {dilation!r}.")


def _choose(op, impl, x, kernels, groups, tpu_check):
  return _dispatch.choose(
      op, impl, PREFERRED,
      {"pallas_gpu": lambda: pallas_gpu.supported(x, kernels, groups),
       "pallas_tpu": tpu_check})


def dynamic_conv(x, kernels, *, kernel_size: int, groups: int, dilation: int = 1,
                 impl: str = "auto", config: DynamicConvConfig | None = None):
  """Per-pixel, per-group dynamic depthwise aggregation (LaConv, stride 1, 'SAME').

  out[b,h,w,c] = sum_{dy,dx} kernels[b,h,w,(c mod G)*k*k + dy*k + dx]
                             * x_pad[b, h+dy*dilation, w+dx*dilation, c]

  Args:
    x: [B,H,W,C]. kernels: [B,H,W,G*k*k] (group-major, taps row-major).
    kernel_size: odd k. groups: G, divides C; interleaved (c mod G) groups.
    impl: "auto" | "xla" | "pallas" | "pallas_gpu" | "pallas_tpu".
  Returns:
    [B,H,W,C] in x.dtype.
  """
  x, kernels = jnp.asarray(x), jnp.asarray(kernels)
  _check_common("dynamic_conv", x, kernels, kernel_size, groups, dilation)
  want = x.shape[:3] + (groups * kernel_size ** 2,)
  if kernels.shape != want:
    raise ValueError(f"dynamic_conv: kernels must be [B,H,W,groups*k*k] = {want}, "
                     f"got {kernels.shape}.")
  cfg = config or DEFAULT_CONFIG
  which = _choose("dynamic_conv", impl, x, kernels, groups, lambda: pallas_tpu.supported(
      x, kernels, kernel_size, groups, dilation, cfg.tpu_vmem_budget))
  if which == "pallas_tpu":
    st = pallas_tpu.make_static(x, kernel_size=kernel_size, groups=groups, dilation=dilation,
                                max_rows=cfg.tpu_max_rows)
    return pallas_tpu.dynamic_conv_tpu(x, kernels, st)
  if which == "pallas_gpu":
    st = pallas_gpu.make_static(x, kernel_size=kernel_size, groups=groups, dilation=dilation,
                                per_pixel=True, cfg=cfg)
    return pallas_gpu.dynamic_conv_pallas(x, kernels, st)
  return dynamic_conv_reference(x, kernels, kernel_size=kernel_size, groups=groups,
                                dilation=dilation)


def dynamic_conv_per_example(x, kernels, *, dilation: int = 1, impl: str = "auto",
                             config: DynamicConvConfig | None = None):
  """Per-example dynamic depthwise conv (one kernel set per example, stride 1, 'SAME').

  out[b,h,w,c] = sum_{dy,dx} kernels[b,dy,dx,c mod G] * x_pad[b,h+dy*d,w+dx*d,c]

  Args:
    x: [B,H,W,C]. kernels: [B,k,k,G] with odd k and G dividing C (G = C: depthwise).
  Returns:
    [B,H,W,C] in x.dtype.
  """
  x, kernels = jnp.asarray(x), jnp.asarray(kernels)
  if kernels.ndim != 4 or kernels.shape[0] != x.shape[0] or kernels.shape[1] != kernels.shape[2]:
    raise ValueError("dynamic_conv_per_example: kernels must be [B,k,k,G] with B = "
                     f"x.shape[0] = {x.shape[0] if x.ndim else '?'}, got {kernels.shape}.")
  k, g = kernels.shape[1], kernels.shape[3]
  _check_common("dynamic_conv_per_example", x, kernels, k, g, dilation)
  which = _choose("dynamic_conv_per_example", impl, x, kernels, g,
                  lambda: _NO_TPU_PER_EXAMPLE)
  if which == "pallas_gpu":
    st = pallas_gpu.make_static(x, kernel_size=k, groups=g, dilation=dilation,
                                per_pixel=False, cfg=config or DEFAULT_CONFIG)
    kr = kernels.reshape(x.shape[0], k * k, g)
    return pallas_gpu.dynamic_conv_pallas(x, kr, st)
  return dynamic_conv_per_example_reference(x, kernels, dilation=dilation)
