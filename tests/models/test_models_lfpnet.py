"""LFPNet model (spec lfpnet.md §8: shapes and ranges, centre crop, WS invariance, shared backbone,
FBA fixed point, batching)."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import models
from jaxvision.models import lfpnet as L

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "methods", "lfpnet"))
import lfpnet_testlib as T  # noqa: E402


def _count(m):
  return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(m, nnx.Param)))


@pytest.fixture(scope="module")
def run():
  m, apply = T.tiny()
  x, xc, raw, tri = T.random_inputs(0)
  out = np.asarray(apply(x, xc, raw))
  return m, apply, (x, xc, raw, tri), out


def test_output_shapes_ranges_and_known_composition(run):
  _, _, (x, xc, raw, tri), out = run
  assert out.shape == (T.BATCH, T.S, T.S, 7)
  assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
  a = np.asarray(L.compose_known(jnp.asarray(out[..., :1]), jnp.asarray(x[..., 3:6])))[..., 0]
  assert (a[tri == 255] == 1).all() and (a[tri == 0] == 0).all()
  np.testing.assert_array_equal(a[tri == 128], out[..., 0][tri == 128])


def test_batched_is_per_example(run):
  """Swapping the two examples swaps the outputs (no cross-example mixing; batch > 1 works)."""
  _, apply, (x, xc, raw, _), out = run
  sw = np.asarray(apply(x[::-1], xc[::-1], raw[::-1]))
  np.testing.assert_allclose(sw, out[::-1], atol=1e-6)
  assert np.abs(out[0] - out[1]).max() > 1e-3


def test_context_alpha_and_crop_shapes(run):
  m = run[0]
  s = 64
  c4, c8, e5 = jax.eval_shape(m.context_features, jax.ShapeDtypeStruct((3, 2 * s, 2 * s, 12),
                                                                       jnp.float32))
  assert c4.shape == (3, s // 4, s // 4, T.WIDTHS[6]) and c8.shape == (3, s // 8, s // 8,
                                                                       T.WIDTHS[5])
  assert e5.shape == (3, s // 2, s // 2, T.WIDTHS[6])
  out, ctx = jax.eval_shape(lambda a, b, c: m(a, b, c, return_context=True),
                            jax.ShapeDtypeStruct((3, s, s, 12), jnp.float32),
                            jax.ShapeDtypeStruct((3, 2 * s, 2 * s, 12), jnp.float32),
                            jax.ShapeDtypeStruct((3, s, s, 3), jnp.float32))
  assert out.shape == (3, s, s, 7) and ctx.shape == (3, 2 * s, 2 * s, 1)


def test_centre_crop_rows():
  h = 16
  x = jnp.arange(2 * h * h).reshape(2, h, h, 1)
  c = np.asarray(L.centre_crop(x))
  np.testing.assert_array_equal(c, np.asarray(x)[:, 4:12, 4:12])


def test_bad_shapes_raise():
  m = nnx.eval_shape(T.build)
  with pytest.raises(ValueError, match="multiple of 16"):
    jax.eval_shape(m, jax.ShapeDtypeStruct((1, 40, 40, 12), jnp.float32),
                   jax.ShapeDtypeStruct((1, 80, 80, 12), jnp.float32),
                   jax.ShapeDtypeStruct((1, 40, 40, 3), jnp.float32))
  with pytest.raises(ValueError, match="2S"):
    jax.eval_shape(m, jax.ShapeDtypeStruct((1, 32, 32, 12), jnp.float32),
                   jax.ShapeDtypeStruct((1, 32, 32, 12), jnp.float32),
                   jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))


def test_ws_conv_invariance_and_standardisation():
  conv = L.Conv(5, 4, 3, rngs=nnx.Rngs(0))
  conv.kernel.set_value(jax.random.normal(jax.random.key(2), (3, 3, 5, 4)))  # std ~ 1 >> eps
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 5))
  y = conv(x)
  w = conv.kernel[...]
  ws = np.asarray(L.standardize_weight(w))
  np.testing.assert_allclose(ws.mean(axis=(0, 1, 2)), 0, atol=1e-6)
  np.testing.assert_allclose(ws.reshape(-1, 4).std(axis=0, ddof=1), 1, atol=1e-3)
  a = jnp.array([0.5, 2.0, 3.0, 7.0])
  b = jnp.array([1.0, -2.0, 0.3, 5.0])
  conv.kernel.set_value(a * w + b)
  # Exact up to eps = 1e-5 added to the std (relative effect ~ 1e-5 / std).
  np.testing.assert_allclose(np.asarray(conv(x)), np.asarray(y), rtol=1e-4, atol=1e-4)
  plain = L.Conv(5, 4, 3, ws=False, rngs=nnx.Rngs(0))
  plain.kernel.set_value(2 * w)
  assert np.abs(np.asarray(plain(x)) - np.asarray(y)).max() > 1e-2


def test_shared_backbone_parameter_count():
  sh = nnx.eval_shape(lambda: T.build(True))
  un = nnx.eval_shape(lambda: T.build(False))
  layers = _count(un.mat_backbone)
  assert layers > 0 and _count(sh) == _count(un) - layers
  assert _count(sh.backbone) == layers
  # The released model: 117.6 M unique parameters shared, about 141 M unshared (spec §2.6).
  full = nnx.eval_shape(lambda: models.build("lfpnet", 7, rngs=nnx.Rngs(0), context_head=False))
  assert _count(full) == 117_612_295
  assert 23.4e6 < _count(full.backbone) < 23.6e6  # ResNet-50 layer1-4


@pytest.mark.slow
def test_unshared_with_copied_weights_matches_shared(run):
  m, _, (x, xc, raw, _), out = run
  un = T.build_abstract(False)  # every variable is copied in below
  nnx.update(un, nnx.state(m))  # every shared-model parameter, incl. backbone
  nnx.update(un.mat_backbone, nnx.state(m.backbone))
  from jaxvision.methods.lfpnet.inference import model_apply_fn
  np.testing.assert_allclose(np.asarray(model_apply_fn(un)(x[:1].repeat(2, 0), xc[:1].repeat(2, 0),
                                                           raw[:1].repeat(2, 0)))[0], out[0],
                             atol=1e-5)


def test_fba_fusion_fixed_point_and_range():
  rng = np.random.default_rng(0)
  f = rng.uniform(size=(50, 3)).astype(np.float32)
  b = rng.uniform(size=(50, 3)).astype(np.float32)
  a = (rng.uniform(size=(50, 1)) > 0.5).astype(np.float32)
  img = a * f + (1 - a) * b
  a2, f2, b2 = (np.asarray(t) for t in L.fba_fusion(jnp.asarray(a), jnp.asarray(img),
                                                    jnp.asarray(f), jnp.asarray(b)))
  np.testing.assert_allclose(a2, a, atol=1e-6)
  np.testing.assert_allclose(f2, f, atol=1e-6)
  np.testing.assert_allclose(b2, b, atol=1e-6)
  ra, rf, rb, ri = (jnp.asarray(rng.uniform(-0.5, 1.5, size=(200, c)), jnp.float32)
                    for c in (1, 3, 3, 3))
  a3, f3, b3 = L.fba_fusion(ra, ri, rf, rb)
  for t in (a3, f3, b3):
    assert float(t.min()) >= 0 and float(t.max()) <= 1


def test_resize_matches_closed_forms_and_pytorch():
  # bilinear x2 (align_corners=False) of [0, 1, 2, 3]: src = (i + .5)/2 - .5, clamped.
  x = jnp.arange(4.0).reshape(1, 4, 1, 1)
  y = np.asarray(L.resize_bilinear(x, (8, 1)))[0, :, 0, 0]
  np.testing.assert_allclose(y, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], atol=1e-6)
  # bicubic align_corners: output i samples input i * 7 / 3; integer positions are exact.
  r = jnp.asarray(np.random.default_rng(0).normal(size=(1, 8, 1, 1)), jnp.float32)
  z = np.asarray(L.resize_bicubic_ac(r, (4, 1)))[0, :, 0, 0]
  np.testing.assert_allclose(z[[0, 3]], np.asarray(r)[0, [0, 7], 0, 0], atol=1e-6)
  torch = pytest.importorskip("torch")
  a = np.random.default_rng(1).normal(size=(2, 12, 10, 3)).astype(np.float32)
  ta = torch.from_numpy(a.transpose(0, 3, 1, 2).copy())
  tf = torch.nn.functional.interpolate
  want = tf(ta, scale_factor=0.5, mode="bicubic", align_corners=True).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(L.resize_bicubic_ac(jnp.asarray(a), (6, 5))), want,
                             atol=1e-5)
  for size in [(24, 20), (5, 7)]:
    want = tf(ta, size=size, mode="bilinear", align_corners=False).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(L.resize_bilinear(jnp.asarray(a), size)), want,
                               atol=1e-5)
  want = torch.nn.AdaptiveAvgPool2d(3)(ta).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(L.adaptive_avg_pool(jnp.asarray(a), 3)), want, atol=1e-5)
  # adaptive average pooling with overlapping bins (4 -> 3): [0:2], [1:3], [2:4].
  p = np.asarray(L.adaptive_avg_pool(jnp.arange(4.0).reshape(1, 4, 1, 1).repeat(1, 2), 3))
  np.testing.assert_allclose(p[0, :, 0, 0], [0.5, 1.5, 2.5])


def test_registered_in_zoo():
  assert {"lfpnet", "lfpnet_tiny"} <= set(models.list_models())
  assert models.default_widths("lfpnet_tiny") == [max(1, round(v / 8)) for v in L.DEFAULT_WIDTHS]
  m = nnx.eval_shape(lambda: models.build("lfpnet_tiny", 7, rngs=nnx.Rngs(0)))
  assert m.widths == models.default_widths("lfpnet_tiny")
