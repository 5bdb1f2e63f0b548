"""Feature distillation for GANs (GCC online collaborative distillation, reusable elsewhere).

    adapters = FeatureAdapters(student_widths, teacher_widths, rngs=nnx.Rngs(0))
    loss, parts = feature_distill_loss(adapters(s_feats), t_feats, lambda_content=50.,
                                       lambda_gram=1e4, metric="rmse")

Features are NHWC [B, H, W, C]. Targets get `stop_gradient`. Everything is computed in
float32 (the 1e4 Gram weight amplifies bf16 errors).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

METRICS = ("rmse", "mse")


def gram(f: jax.Array) -> jax.Array:
  """Gram matrix F F^T / (C H W) per sample: f [B, H, W, C] -> [B, C, C] (float32)."""
  b, h, w, c = f.shape
  f = f.astype(jnp.float32).reshape(b, h * w, c)
  return jnp.einsum("bnc,bnd->bcd", f, f) / (c * h * w)


def rmse(a: jax.Array, b: jax.Array, eps: float = 1e-12) -> jax.Array:
  """sqrt(mean((a - b)^2) + eps): eps keeps the gradient finite at a == b."""
  d = a.astype(jnp.float32) - b.astype(jnp.float32)
  return jnp.sqrt(jnp.mean(jnp.square(d)) + eps)


def mse(a: jax.Array, b: jax.Array) -> jax.Array:
  d = a.astype(jnp.float32) - b.astype(jnp.float32)
  return jnp.mean(jnp.square(d))


def _metric(name: str):
  if name not in METRICS:
    raise ValueError(f"metric must be one of {METRICS}, got {name!r}.")
  return rmse if name == "rmse" else mse


def content_loss(s: jax.Array, t: jax.Array, metric: str = "rmse") -> jax.Array:
  """rho(s, stop_gradient(t)); rho = RMSE (Pix2Pix/SAGAN/SRGAN) or MSE (CycleGAN)."""
  return _metric(metric)(s, jax.lax.stop_gradient(t))


def style_loss(s: jax.Array, t: jax.Array, metric: str = "rmse") -> jax.Array:
  """rho(Gram(s), Gram(stop_gradient(t)))."""
  return _metric(metric)(gram(s), gram(jax.lax.stop_gradient(t)))


def feature_distill_loss(student: Sequence[jax.Array], teacher: Sequence[jax.Array], *,
                         lambda_content: float, lambda_gram: float, metric: str = "rmse"):
  """sum_i [lambda_content * rho(s_i, t_i) + lambda_gram * rho(Gram(s_i), Gram(t_i))].

  student, teacher: equal-length lists of [B, H, W, C] with matching shapes (map student
  widths to teacher widths first, e.g. with `FeatureAdapters`). Returns (loss, dict(content=,
  gram=)) with the weighted sums.
  """
  if len(student) != len(teacher):
    raise ValueError(f"got {len(student)} student features but {len(teacher)} teacher features.")
  for i, (s, t) in enumerate(zip(student, teacher)):
    if s.shape != t.shape:
      raise ValueError(f"feature {i}: student shape {s.shape} != teacher shape {t.shape}; map "
                       f"the student channels with FeatureAdapters first.")
  c = sum((content_loss(s, t, metric) for s, t in zip(student, teacher)), jnp.float32(0))
  g = sum((style_loss(s, t, metric) for s, t in zip(student, teacher)), jnp.float32(0))
  c, g = lambda_content * c, lambda_gram * g
  return c + g, dict(content=c, gram=g)


class FeatureAdapters(nnx.Module):
  """1x1 convs without bias mapping student feature widths to teacher widths (GCC
  `transform_convs`, PyTorch default init U(+-1/sqrt(fan_in))). Trained with the student G."""

  def __init__(self, student_widths: Sequence[int], teacher_widths: Sequence[int], *,
               rngs: nnx.Rngs):
    if len(student_widths) != len(teacher_widths):
      raise ValueError(f"student_widths {list(student_widths)} and teacher_widths "
                       f"{list(teacher_widths)} must have the same length.")
    init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
    self.convs = nnx.List([
        nnx.Conv(s, t, (1, 1), use_bias=False, kernel_init=init, param_dtype=jnp.float32,
                 rngs=rngs) for s, t in zip(student_widths, teacher_widths)])

  def __call__(self, feats: Sequence[jax.Array]) -> list[jax.Array]:
    if len(feats) != len(self.convs):
      raise ValueError(f"expected {len(self.convs)} features, got {len(feats)}.")
    return [conv(f.astype(jnp.float32)) for conv, f in zip(self.convs, feats)]
