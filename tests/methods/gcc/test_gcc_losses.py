"""GCC pure pieces: gates (values, STE gradient, clip), GAN losses and gaps, the arch loss,
Gram / RMSE distillation, the image pool."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.losses import gan_distill
from jaxvision.methods import gcc
from jaxvision.models import gan


def test_gate_mask_values_and_zeroed_channel():
  g = gan.SelectiveGate(4, threshold=0.5)
  g.alpha[...] = jnp.array([1.0, 0.2, 0.5, 0.7])
  np.testing.assert_array_equal(np.asarray(g.mask()), [1.0, 0.0, 0.5, 1.0])
  x = jax.random.normal(jax.random.key(0), (2, 3, 3, 4))
  y = g(x)
  assert float(jnp.abs(y[..., 1]).max()) == 0.0
  np.testing.assert_array_equal(np.asarray(y[..., 2]), np.asarray(0.5 * x[..., 2]))


def test_gate_straight_through_gradient():
  x = jax.random.normal(jax.random.key(1), (2, 3, 3, 4))
  gout = jax.random.normal(jax.random.key(2), (2, 3, 3, 4))
  alpha = jnp.array([1.0, 0.2, 0.5, 0.7])

  def f(alpha, x):
    return jnp.sum(gout * x * gan.gate_mask(alpha, 0.5))

  da, dx = jax.grad(f, argnums=(0, 1))(alpha, x)
  by_hand = np.sum(np.asarray(gout) * np.asarray(x), axis=(0, 1, 2))   # dalpha_c = sum g * x
  np.testing.assert_allclose(np.asarray(da), by_hand, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(dx), np.asarray(gout) * [1.0, 0.0, 0.5, 1.0], rtol=1e-6)


def test_clip_alpha_pure_and_in_place():
  d = gan.PatchDiscriminator(1, rngs=nnx.Rngs(0), widths=[2, 3], n_layers=1, in_channels=1,
                             gates=True)
  d.gates[0].alpha[...] = jnp.array([-0.3, 1.7])
  st = gcc.clip_alpha(nnx.state(d, gcc.ALPHA))
  leaves = jax.tree.leaves(st)
  assert all(float(l.min()) >= 0 and float(l.max()) <= 1 for l in leaves)
  gcc.clip_model_alpha(d)
  np.testing.assert_array_equal(np.asarray(d.gates[0].alpha[...]), [0.0, 1.0])
  rep = gcc.gate_report(d)
  assert [(r["channels"], r["active"], r["off"]) for r in rep] == [(2, 1, 1), (3, 3, 0)]
  # WEIGHTS and ALPHA partition the params
  n_w = len(jax.tree.leaves(nnx.state(d, gcc.WEIGHTS)))
  assert n_w + len(leaves) == len(jax.tree.leaves(nnx.state(d, nnx.Param)))


@pytest.mark.parametrize("lt", ["hinge", "lsgan", "vanilla"])
def test_gan_losses_closed_forms(lt):
  p = jnp.array([[-2.0, 0.5], [1.5, 0.0]])
  pn = np.asarray(p)
  sig = 1 / (1 + np.exp(-pn))
  want = {
      "hinge": (np.maximum(0, 1 - pn).mean(), np.maximum(0, 1 + pn).mean(), -pn.mean()),
      "lsgan": (((pn - 1) ** 2).mean(), (pn ** 2).mean(), ((pn - 1) ** 2).mean()),
      "vanilla": (-np.log(sig).mean(), -np.log(1 - sig).mean(), -np.log(sig).mean()),
  }[lt]
  got = (gcc.d_loss_real(p, lt), gcc.d_loss_fake(p, lt), gcc.g_loss(p, lt))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
  assert float(gcc.d_loss(p, p, lt)) == pytest.approx(0.5 * (want[0] + want[1]), rel=1e-5)
  assert float(gcc.d_loss(p, p, lt, half=False)) == pytest.approx(want[0] + want[1], rel=1e-5)


def test_gap_formulas_and_arch_loss_zero():
  z = jnp.zeros((2, 4, 4, 1))
  assert float(gcc.loss_gap(z, "hinge")) == 1.0                     # |0 - 1|
  assert float(gcc.loss_gap(z + 0.5, "lsgan")) == 0.0               # |0.25 - 0.25|
  # D_S = D_T, G_S = G_T and zero D losses (hinge: real >= 1, fake <= -1) -> L_arch = 0
  p_real, p_fake = jnp.ones((2, 3)) * 1.5, -jnp.ones((2, 3)) * 2.0
  gap_t = gcc.loss_gap(p_fake, "hinge")
  loss, parts = gcc.arch_loss(p_real, p_fake, gap_t, "hinge")
  assert float(loss) == 0.0 and float(parts["d_loss"]) == 0.0
  loss2, _ = gcc.arch_loss(p_real, p_fake, gap_t + 0.25, "hinge")
  assert float(loss2) == pytest.approx(0.25)
  with pytest.raises(ValueError, match="loss_type must be one of"):
    gcc.g_loss(p_real, "wgan")


def test_gram_shape_symmetry_psd_and_einsum():
  f = jax.random.normal(jax.random.key(3), (2, 5, 4, 6))           # NHWC
  g = gan_distill.gram(f)
  assert g.shape == (2, 6, 6)
  np.testing.assert_allclose(np.asarray(g), np.asarray(jnp.swapaxes(g, 1, 2)), atol=1e-7)
  assert float(jnp.linalg.eigvalsh(g).min()) > -1e-6
  nchw = jnp.transpose(f, (0, 3, 1, 2))
  want = jnp.einsum("bchw,bdhw->bcd", nchw, nchw) / (6 * 5 * 4)
  np.testing.assert_allclose(np.asarray(g), np.asarray(want), rtol=1e-5, atol=1e-7)


def test_rmse_kd_zero_finite_gradient_and_weights():
  f = jax.random.normal(jax.random.key(4), (1, 3, 3, 2))
  assert float(gan_distill.rmse(f, f)) == pytest.approx(1e-6)       # sqrt(eps)
  grad = jax.grad(lambda a: gan_distill.content_loss(a, f))(f)
  assert np.isfinite(np.asarray(grad)).all()
  t = f + 1.0
  loss, parts = gan_distill.feature_distill_loss([f, f], [t, f], lambda_content=50.0,
                                                 lambda_gram=1e4, metric="mse")
  assert float(parts["content"]) == pytest.approx(50.0 * 1.0, rel=1e-5)
  g_mse = float(jnp.mean((gan_distill.gram(f) - gan_distill.gram(t)) ** 2))
  assert float(parts["gram"]) == pytest.approx(1e4 * g_mse, rel=1e-4)
  assert float(loss) == pytest.approx(float(parts["content"] + parts["gram"]), rel=1e-6)
  # teacher gets no gradient
  gt = jax.grad(lambda t: gan_distill.feature_distill_loss([f], [t], lambda_content=1.0,
                                                           lambda_gram=1.0)[0])(t)
  assert float(jnp.abs(gt).max()) == 0.0
  ad = gan_distill.FeatureAdapters([2, 3], [4, 5], rngs=nnx.Rngs(0))
  out = ad([f, jnp.ones((1, 2, 2, 3))])
  assert [o.shape[-1] for o in out] == [4, 5]
  with pytest.raises(ValueError, match="FeatureAdapters"):
    gan_distill.feature_distill_loss([f], [jnp.ones((1, 3, 3, 4))], lambda_content=1.0,
                                     lambda_gram=1.0)


def test_image_pool_semantics():
  pool = gcc.init_pool(3, (1, 1, 1))
  seen = []
  key = jax.random.key(0)
  for step in range(12):
    imgs = jnp.arange(2.0).reshape(2, 1, 1, 1) + 10 * step
    old = set(np.asarray(pool.images).ravel().tolist())
    key, k = jax.random.split(key)
    pool, out = gcc.pool_query(pool, imgs, k)
    outs = np.asarray(out).ravel().tolist()
    if step == 0:                       # filling: returned as given, stored
      assert outs == [0.0, 1.0]
    for o, i in zip(outs, np.asarray(imgs).ravel()):
      assert o == i or o in old or o in np.asarray(imgs).ravel()
    seen += [o != i for o, i in zip(outs, np.asarray(imgs).ravel())]
  assert int(pool.count) == 3
  assert 0 < sum(seen) < len(seen)      # both branches of the 50/50 draw happen
  # pool size 0 passes images through
  p0 = gcc.init_pool(0, (1, 1, 1))
  assert gcc.pool_query(p0, imgs, key)[1] is imgs
