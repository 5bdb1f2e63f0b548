"""DECLoss (spec §8): mask size, InfoNCE closed forms, gradient flow, determinism, training,
plus the ESRGAN losses and the PSNR / Y conventions the SR evaluation uses."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision import models
from jaxvision.evaluators.image_quality import psnr, rgb_to_y
from jaxvision.losses import decloss as D
from jaxvision.ops import imresize

TAU = 0.1


def _textures(n=4, hw=48, seed=0):
  """Sinusoid gratings + noise (spec §8), [n, hw, hw, 3] in [0, 1]."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:hw, 0:hw].astype(np.float32)
  out = []
  for _ in range(n):
    f = rng.uniform(0.1, 0.9, (3, 2))
    ph = rng.uniform(0, 2 * np.pi, 3)
    img = np.stack([0.5 + 0.3 * np.sin(f[c, 0] * xx + f[c, 1] * yy + ph[c]) for c in range(3)],
                   -1)
    out.append(np.clip(img + 0.05 * rng.standard_normal(img.shape), 0, 1))
  return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def data():
  hr = _textures()
  lr = imresize(hr, 0.5).astype(np.float32)
  ext = D.RandomFeatureExtractor(rngs=nnx.Rngs(7))
  g, s = nnx.split(ext)
  return dict(hr=jnp.asarray(hr), lr=jnp.asarray(lr), ext_graph=g, ext_state=s)


CFG = D.DECLossConfig(scale=2, num_anchors=16, tau=TAU)


# ------------------------------------------------------------------ 1-2. mask and L_HF
def test_mask_covers_ceil_rho_hw(data):
  h = D.hf_map(data["hr"], CFG)
  assert h.shape == (4, 48, 48)
  m = D.top_rho_mask(h, 0.1)
  k = math.ceil(0.1 * 48 * 48)  # 231; random textures have no ties at the threshold
  np.testing.assert_array_equal(np.asarray(m.sum(axis=(1, 2))), [k] * 4)
  # The mask is exactly the k largest h per image.
  for b in range(4):
    flat = np.asarray(h[b]).ravel()
    thr = np.sort(flat)[-k]
    np.testing.assert_array_equal(np.asarray(m[b]).ravel(), (flat >= thr).astype(np.float32))


def test_hf_map_degradation_matches_numpy(data):
  hr = np.asarray(data["hr"], np.float64)
  y = (hr @ np.array([65.481, 128.553, 24.966]) + 16.0) / 255.0
  want = np.abs(y - imresize(imresize(y[..., None], 0.5), output_shape=(48, 48))[..., 0])
  np.testing.assert_allclose(np.asarray(D.hf_map(data["hr"], CFG)), want, atol=2e-6)


@pytest.mark.parametrize("mode", D.HF_MODES)
def test_constant_image_gives_empty_mask_and_zero_hf_loss(mode):
  cfg = dataclasses.replace(CFG, hf_mode=mode)
  hr = jnp.full((2, 16, 16, 3), 0.6)
  h, w = D.hf_weights(hr, cfg)
  assert float(jnp.max(h)) < 1e-6
  assert float(jnp.sum(w)) == 0.0
  sr = hr + 0.1
  lhf = D.hf_loss(sr, hr, w)
  assert float(lhf) == 0.0 and not np.isnan(float(lhf))
  grad = jax.grad(lambda s: D.hf_loss(s, hr, w))(sr)
  assert bool(jnp.all(grad == 0))


def test_hf_loss_equals_l1_for_full_mask(data):
  hr = data["hr"]
  sr = hr + 0.05 * jax.random.normal(jax.random.key(0), hr.shape)
  l1 = jnp.mean(jnp.abs(sr - hr))
  np.testing.assert_allclose(float(D.hf_loss(sr, hr, jnp.ones(hr.shape[:3]), eps=0.0)), float(l1),
                             rtol=1e-6)
  _, w = D.hf_weights(hr, dataclasses.replace(CFG, rho=1.0))  # ρ = 1: every pixel (h > 0)
  assert float(w.mean()) == 1.0
  _, metrics = D.decloss(sr, hr, key=jax.random.key(0),
                         cfg=dataclasses.replace(CFG, rho=1.0, lambda_con=0.0))
  np.testing.assert_allclose(float(metrics["hf"]), float(metrics["l1"]), rtol=1e-5)


def test_soft_weights_closed_form():
  h = jnp.asarray([[[0.0, 1.0], [2.0, 1.0]]])  # mean 1
  np.testing.assert_allclose(np.asarray(D.soft_weights(h, beta=4.0, eps=0.0)),
                             [[[1.0, 5.0], [9.0, 5.0]]])


# ------------------------------------------------------------------ 3. InfoNCE closed forms
def test_info_nce_identical_features_is_log_k():
  k = 16
  f = jnp.broadcast_to(D.l2_normalize(jnp.arange(1.0, 9.0)), (2, k, 8))
  np.testing.assert_allclose(float(D.info_nce(f, f, TAU)), math.log(k), rtol=1e-6)


def test_info_nce_orthonormal_closed_form():
  k = 16
  q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((32, k)))
  f = jnp.asarray(q.T[None].astype(np.float32))  # K orthonormal rows in R^32
  for tau in (TAU, 1.0):  # f32 logsumexp − pos near 10/τ: compare to ~1e-7 absolute
    want = math.log(1 + (k - 1) * math.exp(-1 / tau))
    np.testing.assert_allclose(float(D.info_nce(f, f, tau)), want, rtol=1e-5, atol=1e-6)


def test_info_nce_hand_computed_and_forms_agree():
  a = jnp.asarray([[[1.0, 0.0], [0.6, 0.8]]])
  p = jnp.asarray([[[0.8, 0.6], [0.0, 1.0]]])
  # Row 0: logits (0.8, 0)/τ, target 0; row 1: (0.48+0.48... ) computed by hand below.
  r0 = math.log(math.exp(8.0) + math.exp(0.0)) - 8.0
  r1 = math.log(math.exp(9.6) + math.exp(8.0)) - 8.0  # a1·p0 = 0.96, a1·p1 = 0.8
  np.testing.assert_allclose(float(D.info_nce(a, p, TAU)), (r0 + r1) / 2, rtol=1e-6)
  # Explicit-negatives form with N(i) = the other positives gives the same value.
  neg = jnp.stack([p[:, [1]], p[:, [0]]], axis=1)  # [B, K, 1, D]
  np.testing.assert_allclose(float(D.info_nce(a, p, TAU, neg)), (r0 + r1) / 2, rtol=1e-6)


def test_info_nce_permutation_invariant():
  ka, kp = jax.random.split(jax.random.key(3))
  a = D.l2_normalize(jax.random.normal(ka, (2, 12, 8)))
  p = D.l2_normalize(jax.random.normal(kp, (2, 12, 8)))
  perm = np.random.default_rng(0).permutation(12)
  np.testing.assert_allclose(float(D.info_nce(a[:, perm], p[:, perm], TAU)),
                             float(D.info_nce(a, p, TAU)), rtol=1e-6)
  # A permutation of the positives alone breaks the pairing and changes the loss.
  assert abs(float(D.info_nce(a, p[:, perm], TAU)) - float(D.info_nce(a, p, TAU))) > 1e-3


# ------------------------------------------------------------------ anchors and hard negatives
def test_select_anchors_prefers_mask_then_largest_h():
  pm = jnp.asarray([[1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
  ph = jnp.asarray([[0.9, 0.5, 0.8, 0.7, 0.1, 0.6, 0.3, 0.2]])
  idx = np.asarray(D.select_anchors(pm, ph, 5, jax.random.key(0)))
  assert set(idx[0]) == {0, 2, 5, 3, 1}  # all 3 masked, then the 2 largest-h unmasked
  idx2 = np.asarray(D.select_anchors(pm, ph, 2, jax.random.key(0)))
  assert set(idx2[0]) <= {0, 2, 5}
  with pytest.raises(ValueError, match="exceeds"):
    D.select_anchors(pm, ph, 9, jax.random.key(0))


@pytest.mark.parametrize("k,kh", [(10, 4), (5, 64)])
def test_hard_negatives_count_and_exclusion(k, kh):
  f = D.l2_normalize(jax.random.normal(jax.random.key(1), (2, k, 6)))
  idx = np.asarray(D.hard_negative_indices(f, kh))
  assert idx.shape == (2, k, min(kh, k - 1))
  fn = np.asarray(f)
  for b in range(2):
    for i in range(k):
      assert i not in idx[b, i] and len(set(idx[b, i])) == idx.shape[-1]
      sims = fn[b] @ fn[b, i]
      sims[i] = -np.inf
      np.testing.assert_array_equal(np.sort(idx[b, i]), np.sort(np.argsort(-sims)[:idx.shape[-1]]))


# ------------------------------------------------------------------ 4. gradients
def test_gradients_frozen_extractor_and_stop_gradient(data):
  g, s = data["ext_graph"], data["ext_state"]
  hr, lr = data["hr"], data["lr"]
  sr0 = jnp.asarray(imresize(np.asarray(lr), output_shape=(48, 48)))
  cfg = dataclasses.replace(CFG, negatives="spatial_hard", num_hard=4)

  def loss(state, sr, hr, lr, frozen=True):
    fn = (lambda x: D.apply_frozen(g, state, x)) if frozen else (
        lambda x: nnx.merge(g, state)(x))
    h, w = D.hf_weights(hr, cfg)
    return D.scl_loss(sr, hr, lr, h, w, key=jax.random.key(0), cfg=cfg, feature_fn=fn)[0]

  g_state, g_sr, g_hr, g_lr = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))(s, sr0, hr, lr)
  assert all(not np.asarray(v).any() for v in jax.tree.leaves(g_state))  # frozen φ
  assert bool(jnp.all(g_hr == 0)) and bool(jnp.all(g_lr == 0))  # positives/negatives are sg
  assert bool(jnp.all(jnp.isfinite(g_sr))) and float(jnp.abs(g_sr).sum()) > 0
  # Control: without the freeze, φ would receive gradient (so the check above can fail).
  g_unfrozen = jax.jit(jax.grad(lambda st: loss(st, sr0, hr, lr, frozen=False)))(s)
  assert any(np.abs(np.asarray(v)).sum() > 0 for v in jax.tree.leaves(g_unfrozen))


def test_generator_gradient_nonzero_and_finite(data):
  m = models.build("edsr_baseline", 3, rngs=nnx.Rngs(0), scale=2, n_resblocks=2, n_feats=16)
  g, params = nnx.split(m)
  fn = lambda x: D.apply_frozen(data["ext_graph"], data["ext_state"], x)  # noqa: E731

  def loss(p, lr, hr):  # data as arguments (closed-over arrays get constant-folded by XLA)
    sr = nnx.merge(g, p)(lr)
    return D.decloss(sr, hr, lr, key=jax.random.key(0), cfg=CFG, feature_fn=fn)[0]

  grads = jax.jit(jax.grad(loss))(params, data["lr"], data["hr"])
  leaves = jax.tree.leaves(grads)
  assert all(bool(jnp.all(jnp.isfinite(v))) for v in leaves)
  assert all(float(jnp.abs(v).sum()) > 0 for v in leaves)


# ------------------------------------------------------------------ 6. determinism, variants
@pytest.mark.parametrize("negatives,features", [("spatial", "extractor"),
                                                ("spatial_hard", "pixel_patch"),
                                                ("bicubic", "extractor")])
def test_determinism_and_variants(data, negatives, features):
  # ρ = 0.5 leaves ~60 of 144 grid cells above the pooled-mask threshold (ρ = 0.1 leaves none on
  # these noisy textures, and then the anchors are the top-K pooled h, the same for every key).
  cfg = dataclasses.replace(CFG, negatives=negatives, features=features, num_hard=4, rho=0.5)
  fn = lambda x: D.apply_frozen(data["ext_graph"], data["ext_state"], x)  # noqa: E731
  sr = data["hr"] + 0.05 * jax.random.normal(jax.random.key(1), data["hr"].shape)
  h, w = D.hf_weights(data["hr"], cfg)

  @jax.jit
  def run(key, sr, hr, lr, h, w):
    return D.scl_loss(sr, hr, lr, h, w, key=key, cfg=cfg, feature_fn=fn)

  args = (sr, data["hr"], data["lr"], h, w)
  (l1, a1), (l2, a2) = run(jax.random.key(5), *args), run(jax.random.key(5), *args)
  assert float(l1) == float(l2) and np.array_equal(a1["anchors"], a2["anchors"])
  assert a1["anchors"].shape == (4, 16) and np.isfinite(float(l1))
  _, a3 = run(jax.random.key(6), *args)
  assert not np.array_equal(a1["anchors"], a3["anchors"])


def test_config_errors():
  with pytest.raises(ValueError, match="negatives='cross'.*spatial_hard"):
    D.DECLossConfig(negatives="cross")
  with pytest.raises(ValueError, match="rho"):
    D.DECLossConfig(rho=0.0)
  hr = jnp.zeros((1, 16, 16, 3))
  with pytest.raises(ValueError, match="needs feature_fn"):
    D.decloss(hr, hr, key=jax.random.key(0), cfg=D.DECLossConfig(scale=2, num_anchors=4))
  with pytest.raises(ValueError, match="needs the LR batch"):
    D.decloss(hr, hr, key=jax.random.key(0), cfg=D.DECLossConfig(
        scale=2, num_anchors=4, negatives="bicubic", features="pixel_patch"))
  with pytest.raises(ValueError, match="do not match scale x2"):
    D.decloss(hr, hr, jnp.zeros((1, 7, 8, 3)), key=jax.random.key(0),
              cfg=D.DECLossConfig(scale=2, num_anchors=4, features="pixel_patch"))


# ------------------------------------------------------------------ 7. training decreases
def test_twenty_adam_steps_decrease_total_and_scl(data):
  m = models.build("edsr_baseline", 3, rngs=nnx.Rngs(0), scale=2, n_resblocks=2, n_feats=16)
  g, params = nnx.split(m)
  fn = lambda x: D.apply_frozen(data["ext_graph"], data["ext_state"], x)  # noqa: E731
  tx = optax.adam(1e-3)
  key = jax.random.key(0)  # fixed anchors: the same objective every step

  def loss(p, lr, hr):
    sr = nnx.merge(g, p)(lr)
    return D.decloss(sr, hr, lr, key=key, cfg=CFG, feature_fn=fn)

  @jax.jit
  def step(p, o, lr, hr):
    (l, met), gr = jax.value_and_grad(loss, has_aux=True)(p, lr, hr)
    u, o = tx.update(gr, o, p)
    return optax.apply_updates(p, u), o, l, met

  opt = tx.init(params)
  hist = []
  for _ in range(21):
    params, opt, l, met = step(params, opt, data["lr"], data["hr"])
    hist.append((float(l), float(met["scl"])))
  assert hist[-1][0] < 0.8 * hist[0][0]
  assert hist[-1][1] < hist[0][1]


# ------------------------------------------------------------------ ESRGAN baseline losses
def test_relativistic_gan_closed_forms():
  z = jnp.zeros((4, 1))
  np.testing.assert_allclose(float(D.relativistic_d_loss(z, z)), math.log(2), rtol=1e-6)
  np.testing.assert_allclose(float(D.relativistic_g_loss(z, z)), math.log(2), rtol=1e-6)
  r, f = jnp.asarray([1.0, 3.0]), jnp.asarray([0.0, -2.0])  # E r = 2, E f = −1
  sp = lambda v: math.log1p(math.exp(v))  # noqa: E731 softplus
  d_want = 0.5 * ((sp(-2.0) + sp(-4.0)) / 2 + (sp(-2.0) + sp(-4.0)) / 2)
  np.testing.assert_allclose(float(D.relativistic_d_loss(r, f)), d_want, rtol=1e-6)
  g_want = 0.5 * ((sp(2.0) + sp(4.0)) / 2 + (sp(2.0) + sp(4.0)) / 2)
  np.testing.assert_allclose(float(D.relativistic_g_loss(r, f)), g_want, rtol=1e-6)
  # The generator loss treats the real logits as constants.
  assert float(jax.grad(lambda rr: D.relativistic_g_loss(rr, f))(r).sum()) == 0.0


def test_esrgan_generator_loss(data):
  fn = lambda x: D.apply_frozen(data["ext_graph"], data["ext_state"], x)  # noqa: E731
  hr = data["hr"]
  z = jnp.zeros((4, 1))
  tot, met = D.esrgan_generator_loss(hr, hr, z, z, feature_fn=fn)
  assert float(met["l1"]) == 0.0 and float(met["percep"]) == 0.0
  np.testing.assert_allclose(float(tot), 0.005 * math.log(2), rtol=1e-6)
  g = jax.grad(lambda s: D.esrgan_generator_loss(s, hr, z, z, feature_fn=fn)[0])(hr + 0.1)
  assert float(jnp.abs(g).sum()) > 0


# ------------------------------------------------------------------ 8. PSNR / Y conventions
def test_psnr_and_y_conventions():
  white = jnp.ones((1, 1, 1, 3))
  np.testing.assert_allclose(float(rgb_to_y(white)[0, 0, 0, 0]), 235 / 255, rtol=1e-6)
  y = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
  assert float(psnr(y, y, crop_border=2)[0]) == 100.0  # capped, not inf
  # A uniform error of exactly 1 on the 0..255 Y scale: 20·log10(255) = 48.13 dB.
  g = jnp.full((1, 16, 16, 3), 100 / 255)
  shift = 1.0 / (65.481 + 128.553 + 24.966)  # +1 on Y (in 0..255 units) from equal RGB steps
  got = psnr(g + shift, g, crop_border=4, quantize=False)
  np.testing.assert_allclose(float(got[0]), 20 * math.log10(255), atol=1e-3)
  assert abs(20 * math.log10(255) - 48.13) < 0.005
