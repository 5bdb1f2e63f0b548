"""DECLoss (Xu et al. 2022, arXiv:2201.01034) and the ESRGAN perceptual + relativistic GAN losses.

The paper's method section was not retrievable; this is the reconstruction of
`shared/papers/decloss.md` §2.2, every [RECON] choice a named field of `DECLossConfig`:

  L = λ_pix·L1(ŷ, y) + λ_hf·L_HF(ŷ, y) + λ_con·L_SCL(ŷ, y, x)

* High-frequency map h (`hf_mode`): |Y − up(down(Y))| with the MATLAB bicubic of the LR
  ('degradation', default), |Y − G_σ*Y| ('gaussian'), Sobel magnitude ('sobel') or |∇²Y|
  ('laplacian'); on luma Y (`hf_space='y'`, BT.601) or the RGB mean ('rgb').
* Weights (`weighting`): binary top-ρ mask M = 1[h ≥ k-th largest h] with k = ⌈ρHW⌉ and
  h > 0 (ties can add pixels; a flat image gets M ≡ 0), or soft W = 1 + β·h/(mean h + ε).
* L_HF = Σ M|ŷ − y| / (C·ΣM + ε) (the L1 over high-frequency pixels).
* L_SCL: InfoNCE (τ) between anchors φ(ŷ)_i and positives sg φ(y)_i at K feature-grid
  locations per image; φ is a frozen extractor (`features='extractor'`: VGG-19 relu3_4 or a
  fixed random conv net) or p×p patches of the high-pass image ('pixel_patch'), L2-normalised
  per location. Anchors: locations whose pooled mask > `anchor_threshold`, K sampled with the
  PRNG key, topped up by the largest pooled h (`enhancement` 'both'/'anchors'; 'loss' samples
  uniformly and uses the mask only in L_HF). Negatives (`negatives`): 'spatial' (the other K−1
  HR anchors of the same image), 'spatial_hard' (the k_h of those most cosine-similar in the
  LR domain, φ(up(x))), 'bicubic' (φ(up(x))_j at all K anchors, RLFN-style).
* Gradients reach ŷ only: y, x and everything computed from them are under stop_gradient,
  and `frozen_features` applies a module with stop_gradient on its state.

    cfg = DECLossConfig(scale=4)
    feats = frozen_features(vgg)                       # or RandomFeatureExtractor
    loss, metrics = decloss(sr, hr, lr, key=key, cfg=cfg, feature_fn=feats)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.evaluators.image_quality import rgb_to_y
from jaxvision.models.sr import RandomConvFeatures
from jaxvision.ops.imresize import check_lr_hr, imresize_jax

HF_MODES = ("degradation", "gaussian", "sobel", "laplacian")
HF_SPACES = ("y", "rgb")
WEIGHTINGS = ("binary", "soft")
ENHANCEMENTS = ("both", "loss", "anchors")
FEATURES = ("extractor", "pixel_patch")
NEGATIVES = ("spatial", "spatial_hard", "bicubic")

FeatureFn = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class DECLossConfig:
  """Every knob of the reconstructed DECLoss (defaults: spec §2.2, §9). A jit static."""
  scale: int = 4
  lambda_pix: float = 1.0
  lambda_hf: float = 1.0
  lambda_con: float = 0.1
  hf_mode: str = "degradation"
  hf_space: str = "y"
  weighting: str = "binary"
  rho: float = 0.1
  beta: float = 4.0
  gaussian_size: int = 5
  gaussian_sigma: float = 1.5
  enhancement: str = "both"
  features: str = "extractor"
  patch_size: int = 8
  patch_stride: int = 4
  negatives: str = "spatial"
  num_anchors: int = 256
  num_hard: int = 64
  tau: float = 0.1
  anchor_threshold: float = 0.5
  eps: float = 1e-8

  def __post_init__(self):
    for name, choices in (("hf_mode", HF_MODES), ("hf_space", HF_SPACES),
                          ("weighting", WEIGHTINGS), ("enhancement", ENHANCEMENTS),
                          ("features", FEATURES), ("negatives", NEGATIVES)):
      if getattr(self, name) not in choices:
        raise ValueError(f"DECLossConfig.{name}={getattr(self, name)!r} is not valid; choose one "
                         f"of {choices}.")
    if not 0.0 < self.rho <= 1.0:
      raise ValueError(f"DECLossConfig.rho must be in (0, 1], got {self.rho}.")
    if self.tau <= 0:
      raise ValueError(f"DECLossConfig.tau must be > 0, got {self.tau}.")
    for name in ("scale", "num_anchors", "num_hard", "patch_size", "patch_stride",
                 "gaussian_size"):
      if int(getattr(self, name)) < 1:
        raise ValueError(f"DECLossConfig.{name} must be a positive int, got "
                         f"{getattr(self, name)}.")


# ------------------------------------------------------------------ high-frequency extraction
def _depthwise(x: jax.Array, k: np.ndarray) -> jax.Array:
  """Same-size depthwise 2-D filter with reflect padding. x: [B, H, W, C]; k: [kh, kw]."""
  c = x.shape[-1]
  ph, pw = k.shape[0] // 2, k.shape[1] // 2
  x = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="reflect")
  w = jnp.tile(jnp.asarray(k, x.dtype)[:, :, None, None], (1, 1, 1, c))
  return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=c,
                                      precision=jax.lax.Precision.HIGHEST)


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
  r = np.arange(size, dtype=np.float64) - (size - 1) / 2
  g = np.exp(-(r ** 2) / (2 * sigma ** 2))
  g = np.outer(g, g)
  return g / g.sum()


SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)


def bicubic_down_up(x: jax.Array, scale: int) -> jax.Array:
  """up_s(down_s(x)) with the MATLAB bicubic (the LR degradation and back). x: [B, H, W, C]."""
  h, w = x.shape[1:3]
  return imresize_jax(imresize_jax(x, 1.0 / scale), output_shape=(h, w))


def high_pass(x: jax.Array, cfg: DECLossConfig) -> jax.Array:
  """Signed high-pass of x [B, H, W, C] by `cfg.hf_mode` (sobel: the gradient magnitude)."""
  x = x.astype(jnp.float32)
  if cfg.hf_mode == "degradation":
    return x - bicubic_down_up(x, cfg.scale)
  if cfg.hf_mode == "gaussian":
    return x - _depthwise(x, gaussian_kernel(cfg.gaussian_size, cfg.gaussian_sigma))
  if cfg.hf_mode == "sobel":
    gx, gy = _depthwise(x, SOBEL_X), _depthwise(x, SOBEL_X.T)
    return jnp.sqrt(gx * gx + gy * gy + 1e-12) * (gx * gx + gy * gy > 0)
  return _depthwise(x, LAPLACIAN)


def hf_map(hr: jax.Array, cfg: DECLossConfig) -> jax.Array:
  """The high-frequency magnitude h [B, H, W] of the HR target (constant: stop_gradient)."""
  hr = jax.lax.stop_gradient(hr.astype(jnp.float32))
  x = rgb_to_y(hr) if cfg.hf_space == "y" else hr
  return jax.lax.stop_gradient(jnp.mean(jnp.abs(high_pass(x, cfg)), axis=-1))


def num_top(rho: float, n: int) -> int:
  """k = ⌈ρ·n⌉ (at least 1; float noise below 1e-9 ignored)."""
  return max(1, min(n, int(math.ceil(rho * n - 1e-9))))


def top_rho_mask(h: jax.Array, rho: float) -> jax.Array:
  """Binary mask [B, H, W] of each image's ⌈ρHW⌉ largest h (ties at the threshold included),
  restricted to h > 0 so a flat image has an empty mask. Uses `lax.top_k`, no full sort."""
  b = h.shape[0]
  flat = h.reshape(b, -1)
  k = num_top(rho, flat.shape[1])
  kth = jax.lax.top_k(flat, k)[0][:, -1]
  m = (h >= kth[:, None, None]) & (h > 0)
  return jax.lax.stop_gradient(m.astype(jnp.float32))


def soft_weights(h: jax.Array, beta: float, eps: float = 1e-8) -> jax.Array:
  """W = 1 + β·h / (mean_image(h) + ε), [B, H, W]."""
  return jax.lax.stop_gradient(1.0 + beta * h / (jnp.mean(h, axis=(1, 2), keepdims=True) + eps))


def hf_weights(hr: jax.Array, cfg: DECLossConfig) -> tuple[jax.Array, jax.Array]:
  """(h, weights) for the HR target: weights are the top-ρ mask or the soft weights."""
  h = hf_map(hr, cfg)
  w = top_rho_mask(h, cfg.rho) if cfg.weighting == "binary" else soft_weights(h, cfg.beta, cfg.eps)
  return h, w


def hf_loss(sr: jax.Array, hr: jax.Array, weights: jax.Array, eps: float = 1e-8) -> jax.Array:
  """L_HF = Σ W|sr − hr| / (C·ΣW + ε). sr, hr: [B, H, W, C]; weights: [B, H, W]."""
  err = jnp.abs(sr.astype(jnp.float32) - jax.lax.stop_gradient(hr.astype(jnp.float32)))
  w = jax.lax.stop_gradient(weights)[..., None]
  return jnp.sum(w * err) / (sr.shape[-1] * jnp.sum(w) + eps)


# ------------------------------------------------------------------ features and anchors
def l2_normalize(f: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Unit-norm along the last axis (float32)."""
  f = f.astype(jnp.float32)
  return f * jax.lax.rsqrt(jnp.sum(f * f, axis=-1, keepdims=True) + eps)


def frozen_features(module: nnx.Module) -> FeatureFn:
  """A pure fn x -> module(x) with the module's state under stop_gradient (frozen extractor)."""
  graphdef, state = nnx.split(module)
  return lambda x: apply_frozen(graphdef, state, x)


def apply_frozen(graphdef, state, x: jax.Array) -> jax.Array:
  """nnx.merge(graphdef, stop_gradient(state))(x): no gradient ever reaches `state`."""
  return nnx.merge(graphdef, jax.lax.stop_gradient(state))(x)


RandomFeatureExtractor = RandomConvFeatures  # the spec §8 stand-in for VGG-19 relu3_4


def patch_features(x: jax.Array, cfg: DECLossConfig) -> jax.Array:
  """'pixel_patch' embedding: p×p patches (stride s, VALID) of the signed high-pass image
  ('sobel' uses the degradation residual instead: a magnitude has no sign).
  x: [B, H, W, C] -> [B, (H−p)/s+1, (W−p)/s+1, p·p·C]."""
  hp = high_pass(x, dataclasses.replace(cfg, hf_mode="degradation")
                 if cfg.hf_mode == "sobel" else cfg)
  p, s = cfg.patch_size, cfg.patch_stride
  return jax.lax.conv_general_dilated_patches(hp, (p, p), (s, s), "VALID",
                                              dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _pool_geometry(hw: tuple[int, int], grid: tuple[int, int],
                   cfg: DECLossConfig) -> tuple[int, int]:
  """(window, stride) that maps the HR pixel grid onto the feature grid."""
  if cfg.features == "pixel_patch":
    return cfg.patch_size, cfg.patch_stride
  s = hw[0] // grid[0]
  if s < 1 or hw[0] != grid[0] * s or hw[1] != grid[1] * s:
    raise ValueError(f"feature grid {grid} is not the HR size {hw} divided by an integer "
                     "stride; use an extractor with 'SAME' padding and HR sizes divisible by "
                     "its stride.")
  return s, s


def pool_to_grid(m: jax.Array, window: int, stride: int) -> jax.Array:
  """Average-pools [B, H, W] with the feature geometry -> [B, gh·gw] (row-major)."""
  p = nnx.avg_pool(m[..., None], (window, window), strides=(stride, stride), padding="VALID")
  return p.reshape(p.shape[0], -1)


def select_anchors(pooled_mask: jax.Array, pooled_h: jax.Array, k: int, key: jax.Array, *,
                   threshold: float = 0.5, use_mask: bool = True) -> jax.Array:
  """K anchor indices [B, K] into the flattened feature grid.

  use_mask: a uniform random sample of the locations with pooled mask > threshold, topped up
  (when fewer exist) by the remaining locations of largest pooled h; else uniform over all.
  The same key gives the same indices.
  """
  b, n = pooled_mask.shape
  if k > n:
    raise ValueError(f"select_anchors: K={k} exceeds the {n} feature locations.")
  u = jax.random.uniform(key, (b, n))
  if use_mask:
    hn = pooled_h / (jnp.max(pooled_h, axis=1, keepdims=True) + 1e-12)  # in [0, 1]
    prio = jnp.where(pooled_mask > threshold, 2.0 + u, hn)
  else:
    prio = u
  return jax.lax.top_k(jax.lax.stop_gradient(prio), k)[1]


def gather_locations(f: jax.Array, idx: jax.Array) -> jax.Array:
  """f: [B, gh, gw, D] (or [B, N, D]); idx: [B, K] -> [B, K, D]."""
  f = f.reshape(f.shape[0], -1, f.shape[-1])
  return jnp.take_along_axis(f, idx[..., None], axis=1)


def hard_negative_indices(lr_feats: jax.Array, num_hard: int) -> jax.Array:
  """For each anchor, the min(num_hard, K−1) other anchors most cosine-similar in the LR
  domain. lr_feats: [B, K, D] (unit norm) -> [B, K, min(num_hard, K−1)] (never the anchor)."""
  k = lr_feats.shape[1]
  nh = min(num_hard, k - 1)
  if nh < 1:
    raise ValueError("hard negatives need at least 2 anchors per image.")
  sim = jnp.einsum("bkd,bjd->bkj", lr_feats, lr_feats, precision=jax.lax.Precision.HIGHEST)
  sim = jnp.where(jnp.eye(k, dtype=bool)[None], -jnp.inf, sim)
  return jax.lax.top_k(jax.lax.stop_gradient(sim), nh)[1]


def info_nce(anchors: jax.Array, positives: jax.Array, tau: float,
             negatives: jax.Array | None = None) -> jax.Array:
  """Mean InfoNCE over anchors, f32 logits.

  anchors, positives: [B, K, D]. negatives None: in-image spatial form, logits = a·pᵀ/τ [K, K]
  with the diagonal as the target (the other positives are the negatives). Else negatives
  [B, K, N, D] per anchor: logits [a·p_i, a·n_i1..a·n_iN]/τ, target 0.
  """
  a = anchors.astype(jnp.float32)
  p = positives.astype(jnp.float32)
  hp = jax.lax.Precision.HIGHEST
  if negatives is None:
    logits = jnp.einsum("bkd,bjd->bkj", a, p, precision=hp) / tau
    pos = jnp.diagonal(logits, axis1=1, axis2=2)
  else:
    pos = jnp.sum(a * p, axis=-1) / tau
    neg = jnp.einsum("bkd,bknd->bkn", a, negatives.astype(jnp.float32), precision=hp) / tau
    logits = jnp.concatenate([pos[..., None], neg], axis=-1)
  return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - pos)


# ------------------------------------------------------------------ the loss
def scl_loss(sr: jax.Array, hr: jax.Array, lr: jax.Array | None, h: jax.Array,
             weights: jax.Array, *, key: jax.Array, cfg: DECLossConfig,
             feature_fn: FeatureFn | None = None) -> tuple[jax.Array, dict]:
  """Spatial contrastive term L_SCL and its anchor indices (see module doc).

  sr, hr: [B, H, W, 3]; lr: [B, H/s, W/s, 3] (needed for hard/bicubic negatives); h, weights:
  [B, H, W] from `hf_weights`. Returns (loss, {'anchors': [B, K] indices}).
  """
  hr = jax.lax.stop_gradient(hr)
  if cfg.features == "extractor":
    if feature_fn is None:
      raise ValueError("DECLoss features='extractor' needs feature_fn (VGG-19 relu3_4 or "
                       "RandomFeatureExtractor via frozen_features); or set features="
                       "'pixel_patch'.")
    embed = feature_fn
  else:
    embed = lambda x: patch_features(x, cfg)  # noqa: E731
  f_sr = l2_normalize(embed(sr))
  f_hr = jax.lax.stop_gradient(l2_normalize(embed(hr)))
  grid = f_sr.shape[1:3]
  window, stride = _pool_geometry(hr.shape[1:3], grid, cfg)
  mask = (weights > 0).astype(jnp.float32) if cfg.weighting == "binary" else (
      weights > 1.0 + cfg.beta).astype(jnp.float32)  # soft: above-mean h
  pm = pool_to_grid(mask, window, stride)
  ph = pool_to_grid(h, window, stride)
  k = min(cfg.num_anchors, pm.shape[1])
  idx = select_anchors(pm, ph, k, key, threshold=cfg.anchor_threshold,
                       use_mask=cfg.enhancement != "loss")
  a = gather_locations(f_sr, idx)
  p = gather_locations(f_hr, idx)
  negatives = None
  if cfg.negatives != "spatial":
    if lr is None:
      raise ValueError(f"DECLoss negatives={cfg.negatives!r} needs the LR batch (lr=...).")
    up = imresize_jax(jax.lax.stop_gradient(lr).astype(jnp.float32), output_shape=hr.shape[1:3])
    f_lr = gather_locations(jax.lax.stop_gradient(l2_normalize(embed(up))), idx)
    if cfg.negatives == "spatial_hard":
      nidx = hard_negative_indices(f_lr, cfg.num_hard)           # [B, K, nh]
      negatives = jax.vmap(lambda pb, ib: pb[ib])(p, nidx)        # [B, K, nh, D]
    else:  # bicubic
      negatives = jnp.broadcast_to(f_lr[:, None], (f_lr.shape[0], k) + f_lr.shape[1:])
  return info_nce(a, p, cfg.tau, negatives), {"anchors": idx}


def decloss(sr: jax.Array, hr: jax.Array, lr: jax.Array | None = None, *, key: jax.Array,
            cfg: DECLossConfig = DECLossConfig(),
            feature_fn: FeatureFn | None = None) -> tuple[jax.Array, dict]:
  """Total DECLoss and its parts.

  sr: [B, H, W, 3] network output (gradients flow here only); hr: [B, H, W, 3] target in
  [0, 1]; lr: [B, H/s, W/s, 3] input (for 'spatial_hard' / 'bicubic' negatives); key: PRNG
  key for anchor sampling. Returns (loss, {'l1', 'hf', 'scl', 'mask_frac'}) scalars.
  """
  if sr.shape != hr.shape or sr.ndim != 4:
    raise ValueError(f"decloss: sr and hr must both be [B, H, W, C]; got {sr.shape} and "
                     f"{hr.shape}.")
  if cfg.lambda_con and cfg.features == "extractor" and feature_fn is None:
    raise ValueError("DECLoss features='extractor' needs feature_fn (VGG-19 relu3_4 or "
                     "RandomFeatureExtractor via frozen_features); or set features='pixel_patch'.")
  if cfg.lambda_con and cfg.negatives != "spatial" and lr is None:
    raise ValueError(f"DECLoss negatives={cfg.negatives!r} needs the LR batch (lr=...).")
  if lr is not None:
    check_lr_hr(lr.shape, hr.shape, cfg.scale)
  hr = jax.lax.stop_gradient(hr.astype(jnp.float32))
  srf = sr.astype(jnp.float32)
  l1 = jnp.mean(jnp.abs(srf - hr))
  h, w = hf_weights(hr, cfg)
  zero = jnp.zeros((), jnp.float32)
  lhf = hf_loss(srf, hr, w, cfg.eps) if cfg.enhancement != "anchors" else zero
  total = cfg.lambda_pix * l1 + cfg.lambda_hf * lhf
  lscl = zero
  if cfg.lambda_con:
    lscl, _ = scl_loss(srf, hr, lr, h, w, key=key, cfg=cfg, feature_fn=feature_fn)
    total = total + cfg.lambda_con * lscl
  frac = jnp.mean((w > 0) if cfg.weighting == "binary" else (w > 1.0 + cfg.beta))
  return total, {"l1": l1, "hf": lhf, "scl": lscl, "mask_frac": frac}


# ------------------------------------------------------------------ ESRGAN baseline losses
def perceptual_loss(sr: jax.Array, hr: jax.Array, feature_fn: FeatureFn) -> jax.Array:
  """Mean |φ(sr) − sg φ(hr)| (ESRGAN: VGG-19 conv5_4 before activation)."""
  f_sr = feature_fn(sr).astype(jnp.float32)
  f_hr = jax.lax.stop_gradient(feature_fn(jax.lax.stop_gradient(hr)).astype(jnp.float32))
  return jnp.mean(jnp.abs(f_sr - f_hr))


def _bce_logits(z: jax.Array, target: float) -> jax.Array:
  return jnp.mean(jax.nn.softplus(-z) if target == 1.0 else jax.nn.softplus(z))


def relativistic_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """RaGAN discriminator loss, ½[BCE(C(x_r) − E C(x_f), 1) + BCE(C(x_f) − E C(x_r), 0)].

  real_logits, fake_logits: [B] or [B, 1] raw D outputs (fake from sg(G(x)))."""
  r, f = real_logits.astype(jnp.float32), fake_logits.astype(jnp.float32)
  return 0.5 * (_bce_logits(r - jnp.mean(f), 1.0) + _bce_logits(f - jnp.mean(r), 0.0))


def relativistic_g_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """RaGAN generator loss, ½[BCE(C(x_r) − E C(x_f), 0) + BCE(C(x_f) − E C(x_r), 1)]; the real
  logits are constants (stop_gradient)."""
  r = jax.lax.stop_gradient(real_logits.astype(jnp.float32))
  f = fake_logits.astype(jnp.float32)
  return 0.5 * (_bce_logits(r - jnp.mean(f), 0.0) + _bce_logits(f - jnp.mean(r), 1.0))


@dataclasses.dataclass(frozen=True)
class ESRGANLossConfig:
  """ESRGAN generator weights (spec §2.3): 0.01·L1 + 1·perceptual + 0.005·RaGAN."""
  w_pix: float = 0.01
  w_percep: float = 1.0
  w_gan: float = 0.005


def esrgan_generator_loss(sr: jax.Array, hr: jax.Array, real_logits: jax.Array,
                          fake_logits: jax.Array, *, feature_fn: FeatureFn,
                          cfg: ESRGANLossConfig = ESRGANLossConfig()) -> tuple[jax.Array, dict]:
  """ESRGAN generator objective. sr, hr: [B, H, W, 3]; logits: D(hr), D(sr). feature_fn: frozen
  VGG-19 conv5_4 (or a stand-in). Returns (loss, {'l1', 'percep', 'gan'})."""
  hr = jax.lax.stop_gradient(hr.astype(jnp.float32))
  l1 = jnp.mean(jnp.abs(sr.astype(jnp.float32) - hr))
  lp = perceptual_loss(sr, hr, feature_fn) if cfg.w_percep else jnp.zeros((), jnp.float32)
  lg = relativistic_g_loss(real_logits, fake_logits)
  total = cfg.w_pix * l1 + cfg.w_percep * lp + cfg.w_gan * lg
  return total, {"l1": l1, "percep": lp, "gan": lg}
