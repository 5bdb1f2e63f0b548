"""Elementwise and per-example ops shared by the transfer attacks (all batched, jittable).

Pixel space is [lo, hi] (default [0, 1]); images are NHWC, x: [B, H, W, C].
Randomness is per example: every random op takes one key per row, so an image gets the
same draw alone or inside any batch (and rows shard freely over a 'data' axis).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def example_keys(rng: jax.Array, batch: int) -> jax.Array:
  """One key per example, [B]: `split(rng, B)` for a single key; a [B] key array passes.

  The per-image loop that reproduces a batched call uses `example_keys(rng, B)[i:i+1]`.
  """
  if not jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    raise ValueError(f"rng must be a typed key (jax.random.key(seed)), got dtype {rng.dtype}.")
  if rng.shape == ():
    return jax.random.split(rng, batch)
  if rng.shape != (batch,):
    raise ValueError(f"rng must be one key or {batch} keys (one per image), got shape "
                     f"{rng.shape}.")
  return rng


def fold_in(keys: jax.Array, data) -> jax.Array:
  """`jax.random.fold_in` on every key of a key array [N]."""
  return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, data)


def split_each(keys: jax.Array, num: int) -> jax.Array:
  """[N] keys -> [N, num] keys."""
  return jax.vmap(lambda k: jax.random.split(k, num))(keys)


def _per_example(v: jax.Array, x: jax.Array) -> jax.Array:
  """[B] (or scalar) -> broadcastable against x: [B, ...]."""
  v = jnp.asarray(v, x.dtype)
  return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def project_linf(x_adv: jax.Array, x: jax.Array, eps, lo: float = 0.0,
                 hi: float = 1.0) -> jax.Array:
  """Π: clip x_adv − x to [−eps, eps], then x_adv to [lo, hi]. eps: scalar or [B]."""
  e = _per_example(eps, x)
  return jnp.clip(x + jnp.clip(x_adv - x, -e, e), lo, hi)


def mi_normalize(grad: jax.Array) -> jax.Array:
  """grad / mean(|grad|) per example (MI-FGSM's L1 normalisation up to the constant numel).

  grad: [B, ...]. An all-zero gradient stays zero (no division by zero).
  """
  m = jnp.mean(jnp.abs(grad), axis=tuple(range(1, grad.ndim)), keepdims=True)
  return jnp.where(m > 0, grad / jnp.where(m > 0, m, 1.0), 0.0)


def momentum_update(mom: jax.Array, grad: jax.Array, decay: float) -> jax.Array:
  """MI-FGSM accumulator: g_{t+1} = decay * g_t + grad / mean(|grad|) (per example)."""
  return decay * mom + mi_normalize(grad)


# ---------------------------------------------------------------- DecayReLU (LLTA, SGM)

@jax.custom_vjp
def decay_relu(x: jax.Array, gamma: jax.Array) -> jax.Array:
  """Forward relu(x); backward g -> gamma * 1[x > 0] * g (gamma gets a zero cotangent).

  x: [B, ...]; gamma: scalar or [B] (per example, broadcast over the trailing dims).
  """
  return jax.nn.relu(x)


def _decay_relu_fwd(x, gamma):
  return jax.nn.relu(x), (x > 0, gamma)


def _decay_relu_bwd(res, g):
  pos, gamma = res
  scale = _per_example(gamma, g)
  return jnp.where(pos, g * scale, 0.0).astype(g.dtype), jnp.zeros_like(gamma)


decay_relu.defvjp(_decay_relu_fwd, _decay_relu_bwd)


# ---------------------------------------------------------------- DI (resize-pad) augmentation

def canvas_size(size: int, resize_rate: float) -> int:
  """R = floor(size * resize_rate) (DI: 1.1; LLTA: 1/0.875, so 224 -> 256)."""
  return int(math.floor(size * resize_rate + 1e-6))


def resize_pad(img: jax.Array, rnd, top, left, canvas: int) -> jax.Array:
  """One image [H, W, C]: nearest-resize to rnd x rnd, zero-pad at (top, left) to a canvas x
  canvas image, nearest-resize back to H x W. Nearest index rule src = floor(dst * in / out)
  (PyTorch `F.interpolate(mode='nearest')`). rnd, top, left: int scalars (may be traced).
  """
  h, w = img.shape[0], img.shape[1]

  def index(n, off):
    c = (jnp.arange(n) * canvas) // n                 # output -> canvas pixel
    valid = (c >= off) & (c < off + rnd)
    src = jnp.clip(((c - off) * n) // rnd, 0, n - 1)  # canvas -> source pixel
    return src, valid

  rows, vr = index(h, top)
  cols, vc = index(w, left)
  out = img[rows][:, cols]
  return out * (vr[:, None] & vc[None, :])[..., None].astype(img.dtype)


def _uniform_int(u: jax.Array, n) -> jax.Array:
  """u ~ U[0, 1) -> an int uniform on {0, ..., n-1}."""
  return jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)


def input_diversity(x: jax.Array, keys: jax.Array, prob: float, resize_rate: float) -> jax.Array:
  """DI / LLTA data augmentation, one independent draw per row. x: [N, H, W, C] (H == W);
  keys: [N]. With probability `prob` a row becomes `resize_pad` with rnd ~ U{H..R},
  top, left ~ U{0..R-rnd}, R = canvas_size(H, resize_rate); otherwise it is unchanged.
  Output: [N, H, W, C]; every pixel is 0 or a pixel of the input row.
  """
  if keys.shape != x.shape[:1]:
    raise ValueError(f"input_diversity needs one key per row: keys {keys.shape}, x {x.shape}.")
  u = jax.vmap(lambda k: jax.random.uniform(k, (4,)))(keys)
  return input_diversity_u(x, u, prob, resize_rate)


def input_diversity_u(x: jax.Array, u: jax.Array, prob: float, resize_rate: float) -> jax.Array:
  """`input_diversity` driven by given uniforms u: [N, 4] in [0, 1) (rnd, top, left, apply)."""
  n, h, w = x.shape[:3]
  if h != w:
    raise ValueError(f"input diversity needs square images, got {h}x{w}; resize them first.")
  canvas = canvas_size(h, resize_rate)
  if canvas < h:
    raise ValueError(f"resize_rate must be >= 1, got {resize_rate}.")

  def one(img, u):
    rnd = h + _uniform_int(u[0], canvas - h + 1)
    top = _uniform_int(u[1], canvas - rnd + 1)
    left = _uniform_int(u[2], canvas - rnd + 1)
    return jnp.where(u[3] < prob, resize_pad(img, rnd, top, left, canvas), img)

  return jax.vmap(one)(x, u)


# ---------------------------------------------------------------- TI (translation-invariant)

def gaussian_kernel(size: int, nsig: float = 3.0) -> np.ndarray:
  """TI kernel [size, size]: outer product of N(0,1) pdf at linspace(-nsig, nsig, size), sum 1."""
  if size < 1:
    raise ValueError(f"TI kernel size must be >= 1, got {size}.")
  t = np.linspace(-nsig, nsig, size)
  k1 = np.exp(-0.5 * t ** 2)
  k = np.outer(k1, k1)
  return (k / k.sum()).astype(np.float32)


def ti_smooth(grad: jax.Array, kernel) -> jax.Array:
  """Depthwise (per-channel) 'same' zero-padded convolution of grad [B, H, W, C] with kernel
  [k, k] (correlation; the Gaussian is symmetric). Channels are never mixed.
  """
  kernel = jnp.asarray(kernel, grad.dtype)
  k = kernel.shape[0]
  c = grad.shape[-1]
  rhs = jnp.broadcast_to(kernel[:, :, None, None], (k, kernel.shape[1], 1, c))
  pad = ((k // 2, (k - 1) // 2), (kernel.shape[1] // 2, (kernel.shape[1] - 1) // 2))
  return jax.lax.conv_general_dilated(grad, rhs, (1, 1), pad,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=c,
                                      precision=jax.lax.Precision.HIGHEST)


def ce_sum(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Cross-entropy summed over the batch (so grads w.r.t. inputs are per-example)."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1).sum()
