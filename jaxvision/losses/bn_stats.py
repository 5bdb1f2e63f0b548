"""BatchNorm-statistics matching (ZeroQ / GDFQ / IntraQ synthesis), without editing models.

`attach_taps(model)` walks the graph and wraps every `nnx.BatchNorm` in a
`BNTap` that records the batch mean and biased variance of the BN *input*
(over every axis but the channel axis) in `Captured` variables, and optionally
wraps one feature layer (default: the classifier) to record its input, the
penultimate feature. Under `jax.jit` with a batch sharded over devices the
means are over the global batch (XLA inserts the cross-device reduction).

    taps = attach_taps(teacher, feature_layer="fc")
    logits = teacher(x, train=False)
    loss = bn_stats_loss(bn_stats(teacher))
    feats = captured_features(teacher)                  # [B, D]
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.quant.model import find_modules, replace_modules
from jaxvision.models.common import path_str


class Captured(nnx.Variable):
  """A value recorded during the forward pass (read it in the same trace)."""


class BNTap(nnx.Module):
  """Wraps an `nnx.BatchNorm`; records input batch mean / biased var per channel.

  x: [..., C] (channels last). Calls the BN unchanged.
  """

  def __init__(self, bn: nnx.BatchNorm):
    self.bn = bn
    c = bn.num_features
    self.batch_mean = Captured(jnp.zeros((c,), jnp.float32))
    self.batch_var = Captured(jnp.zeros((c,), jnp.float32))

  def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
    xf = x.astype(jnp.float32)
    red = tuple(range(x.ndim - 1))
    mean = jnp.mean(xf, axis=red)
    var = jnp.mean(jnp.square(xf - mean), axis=red)  # biased (two-pass: no cancellation)
    self.batch_mean[...] = mean
    self.batch_var[...] = var
    return self.bn(x, *args, **kwargs)


class FeatureTap(nnx.Module):
  """Wraps a layer; records its input flattened to [B, D] (the penultimate feature)."""

  def __init__(self, layer: nnx.Module, dim: int):
    self.layer = layer
    self.features = Captured(jnp.zeros((1, dim), jnp.float32))

  def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
    self.features.set_value(x.reshape(x.shape[0], -1).astype(jnp.float32))
    return self.layer(x, *args, **kwargs)


def attach_taps(model: nnx.Module, *, feature_layer: Optional[str] = None) -> dict:
  """Wraps every BatchNorm in a `BNTap` (and `feature_layer` in a `FeatureTap`), in place.

  Args:
    feature_layer: '/'-joined path of the layer whose input is the feature (e.g. 'fc');
      None: no feature tap.
  Returns: {"bn": [paths], "feature": path or None}.
  """
  if find_modules(model, (BNTap, FeatureTap)):
    raise ValueError("model already has taps; call detach_taps first.")
  bns = replace_modules(model, (nnx.BatchNorm,), lambda p, m: BNTap(m))
  if not bns:
    raise ValueError("model has no nnx.BatchNorm layers; BN-statistics matching needs them.")
  feat = None
  if feature_layer is not None:
    found = [(p, m) for p, m in find_modules(model, (nnx.Module,)) if path_str(p) == feature_layer]
    cands = [path_str(p) for p, _ in find_modules(model, (nnx.Linear, nnx.Conv))]
    if not found:
      raise ValueError(f"feature_layer '{feature_layer}' not found; layers: {cands[-5:]} ...")
    _, layer = found[0]
    dim = getattr(layer, "in_features", None)
    if dim is None:
      raise ValueError(f"feature_layer '{feature_layer}' has no in_features; pick a Linear/Conv.")
    replace_modules(model, (type(layer),),
                    lambda p, m: FeatureTap(m, dim) if p == feature_layer else None)
    feat = feature_layer
  return {"bn": bns, "feature": feat}


def detach_taps(model: nnx.Module) -> None:
  """Removes `BNTap` / `FeatureTap` wrappers in place."""
  replace_modules(model, (BNTap,), lambda p, t: t.bn)
  replace_modules(model, (FeatureTap,), lambda p, t: t.layer)


def bn_stats(model: nnx.Module) -> list[tuple[jax.Array, jax.Array, jax.Array, jax.Array]]:
  """[(batch_mean, batch_var, running_mean, running_var), ...] per tapped BN, each [C]."""
  out = []
  for _, t in find_modules(model, (BNTap,)):
    out.append((t.batch_mean[...], t.batch_var[...],
                t.bn.mean[...].astype(jnp.float32), t.bn.var[...].astype(jnp.float32)))
  if not out:
    raise ValueError("no BN taps found; call attach_taps(model) first.")
  return out


def captured_features(model: nnx.Module) -> jax.Array:
  """The recorded input of the tapped feature layer, [B, D]."""
  taps = find_modules(model, (FeatureTap,))
  if len(taps) != 1:
    raise ValueError(f"expected exactly one FeatureTap, found {len(taps)}; "
                     "call attach_taps(model, feature_layer=...).")
  return taps[0][1].features[...]


def bn_stats_loss(stats) -> jax.Array:
  """L_BNS = (1/L) sum_l [mean_c (mu - mu_hat)^2 + mean_c (var - var_hat)^2] (scalar)."""
  terms = [jnp.mean(jnp.square(m - rm)) + jnp.mean(jnp.square(v - rv)) for m, v, rm, rv in stats]
  return sum(terms) / len(terms)
