"""Tiled inference with stub models, tent weights, TTA inverses (spec §2.7, §8 items 7-8)."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.methods.lfpnet import inference as I
from jaxvision.methods.lfpnet.encoding import IMAGENET_MEAN, IMAGENET_STD


def test_tent_weight_symmetric_with_max():
  w = I.tent_weight(1024)
  assert w.shape == (1024, 1024)
  np.testing.assert_array_equal(w, w.T)
  np.testing.assert_array_equal(w, w[::-1])
  np.testing.assert_array_equal(w, w[:, ::-1])
  assert w.max() == np.float32(512 / 513) and w.min() == np.float32(1 / 513)
  assert w[511, 511] == np.float32(512 / 513) and w[0, 700] == np.float32(1 / 513)


def test_transforms_inverse_and_distinct():
  x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
  seen = []
  assert len(I.TRANSFORMS) == 8
  for t in I.TRANSFORMS:
    y = I.apply_transform(jnp.asarray(x), t)
    np.testing.assert_array_equal(np.asarray(I.invert_transform(y, t)), x)
    np.testing.assert_array_equal(I.invert_transform(I.apply_transform(x, t), t), x)  # numpy
    seen.append(np.asarray(y).tobytes())
  assert len(set(seen)) == 8
  # Official single pass of eval.py: vertical flip, then rotate 90 degrees clockwise.
  a = np.arange(6).reshape(1, 2, 3, 1)
  np.testing.assert_array_equal(I.apply_transform(a, I.TTA_MODES["official"][0])[0, ..., 0],
                                [[0, 3], [1, 4], [2, 5]])


def test_tile_grid_matches_eval_py():
  g = I.tile_grid(1000, 2048, 1024)
  # n = (H - 1 - 512) // 512 + 1; padded = n * 512 + 512, centred.
  assert (g.n_h, g.n_w) == (1, 3) and (g.ph, g.pw) == (1024, 2048)
  assert (g.top, g.left) == (12, 0)
  assert g.origins() == [(0, 0), (0, 512), (0, 1024)]
  assert I.tile_grid(100, 40, 64).n_h == 3 and I.tile_grid(20, 20, 64).n_h == 1
  with pytest.raises(ValueError, match="multiple of 32"):
    I.tile_grid(10, 10, 48)


def _img_tri(h, w, seed):
  rng = np.random.default_rng(seed)
  img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
  tri = rng.choice(np.array([0, 128, 255], np.uint8), size=(h, w), p=[0.3, 0.4, 0.3])
  tri[: h // 3] = 0  # a band with no unknown pixel (skipped tiles)
  return img, tri


def stub_constant(c):
  def f(x, xc, raw):
    return jnp.full(x.shape[:3] + (7,), c, jnp.float32)
  return f


def stub_context_pointwise(x, xc, raw):
  """alpha = mean RGB of the context's centre crop (checks that the context is aligned)."""
  s = x.shape[1]
  rgb = xc[:, s // 2:s // 2 + s, s // 2:s // 2 + s, :3] * IMAGENET_STD + IMAGENET_MEAN
  return jnp.concatenate([jnp.mean(rgb, -1, keepdims=True), raw, raw], -1)


@pytest.mark.parametrize("h,w", [(70, 45), (32, 32), (97, 130)])
def test_constant_stub_gives_constant_on_unknown(h, w):
  img, tri = _img_tri(h, w, h)
  a = I.predict_alpha_float(stub_constant(0.37), img, tri, tile=32, tta="8", batch_size=3)
  assert a.shape == (h, w)
  np.testing.assert_allclose(a[tri == 128], 0.37, atol=1e-6)
  assert (a[tri == 0] == 0).all() and (a[tri == 255] == 1).all()
  u8 = I.predict_alpha(stub_constant(0.37), img, tri, tile=32, tta="none")
  assert u8.dtype == np.uint8 and (u8[tri == 128] == 94).all()  # trunc(0.37 * 255 = 94.35)


@pytest.mark.parametrize("tta", ["none", "official", "8"])
def test_tiled_equals_untiled_pointwise_stub(tta):
  img, tri = _img_tri(64, 64, 1)
  want = img.astype(np.float32).mean(-1) / 255.0
  want[tri == 0], want[tri == 255] = 0, 1
  tiled = I.predict_alpha_float(stub_context_pointwise, img, tri, tile=32, tta=tta, batch_size=2)
  untiled = I.predict_alpha_untiled(stub_context_pointwise, img, tri, tta=tta)
  np.testing.assert_allclose(tiled, want, atol=1e-5)
  np.testing.assert_allclose(untiled, want, atol=1e-5)
  # Skipping tiles without unknown pixels is exact.
  full = I.predict_alpha_float(stub_context_pointwise, img, tri, tile=32, tta=tta, batch_size=2,
                               skip_known=False)
  np.testing.assert_allclose(full, tiled, atol=1e-6)


def test_tta_inverse_in_pipeline_with_asymmetric_stub():
  """A stub whose output is its input's row index: each transform's inverse must restore it."""
  def stub(x, xc, raw):
    return jnp.broadcast_to(raw[..., :1], x.shape[:3] + (1,))
  img, tri = _img_tri(32, 32, 3)
  tri[:] = 128
  img[..., 0] = (np.arange(32)[:, None] * 7).astype(np.uint8)
  for t in I.TRANSFORMS:
    a = I.predict_alpha_untiled(stub, img, tri, tta=[t])
    np.testing.assert_allclose(a, img[..., 0] / 255.0, atol=1e-6)


def _asym_stub(x, xc, raw):
  """Depends on position, the context (mean of its centre crop) and the trimap encoding, so a
  misplaced tile, context or transform shows."""
  s = x.shape[1]
  rgb = xc[:, s // 2:s // 2 + s, s // 2:s // 2 + s, :3] * IMAGENET_STD + IMAGENET_MEAN
  rows = jnp.arange(s, dtype=jnp.float32)[None, :, None, None] / s
  a = 0.3 * jnp.mean(rgb, -1, keepdims=True) + 0.4 * raw[..., :1] * rows + 0.2 * x[..., 6:7]
  return jnp.concatenate([a, raw, raw], -1)


@pytest.mark.parametrize("tta", ["none", "8"])
def test_jax_tiled_alpha_equals_host_tiling(tta):
  """The in-loop (jit, batched, lax.scan) tiling equals the host tiling image by image."""
  import jax
  pairs = [_img_tri(70, 45, 5), _img_tri(70, 45, 6)]
  img = jnp.asarray(np.stack([p[0] for p in pairs]), jnp.float32) / 255.0
  tri = jnp.asarray(np.stack([p[1] for p in pairs]))
  got = np.asarray(jax.jit(lambda i, t: I.tiled_alpha(_asym_stub, i, t, tile=32, tta=tta))(
      img, tri))
  for k, (im, tr) in enumerate(pairs):
    want = I.predict_alpha_float(_asym_stub, im, tr, tile=32, tta=tta, batch_size=2)
    np.testing.assert_allclose(got[k], want, atol=2e-6)
  assert not np.allclose(got[0][pairs[0][1] == 128], got[0][pairs[0][1] == 128].mean())
