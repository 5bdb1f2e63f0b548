"""LaConvNet (laconv.md §2-3): packing, positions, condition generator, LaConv vs a naive loop,
translation equivariance, heads and tiny full-model forwards."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import models
from jaxvision.models import laconvnet as L

KEY = jax.random.key(0)


pytestmark = pytest.mark.usefixtures("fast_compiles")  # compile-bound tiny programs


def _rngs(seed=0):
  return nnx.Rngs(jax.random.key(seed, impl="rbg"))  # cheap init compiles on CPU


def _make(cls, *a, **kw):
  """Builds a module under one jit (far fewer CPU compiles than eager init)."""
  g, st = jax.jit(lambda: nnx.split(cls(*a, rngs=_rngs(), **kw)))()
  return nnx.merge(g, st)


def _run(module, *args, **kw):
  """module(*args, **kw) under one jit (kw are static or closed-over constants)."""
  g, st = nnx.split(module)
  return jax.jit(lambda st, args: nnx.merge(g, st)(*args, **kw))(st, args)


def test_pixel_pack_index_formula_and_inverse():
  x = jax.random.normal(KEY, (2, 8, 12, 3))
  t = 4
  p = np.asarray(L.pixel_pack(x, t))
  assert p.shape == (2, 2, 3, 3 * 16)
  xn = np.asarray(x)
  for (b, h, w, c, i, j) in [(0, 0, 0, 0, 0, 0), (1, 1, 2, 2, 3, 1), (0, 1, 0, 1, 2, 3)]:
    assert p[b, h, w, c * t * t + i * t + j] == xn[b, h * t + i, w * t + j, c]
  np.testing.assert_array_equal(np.asarray(L.pixel_unpack(L.pixel_pack(x, t), t)), xn)
  with pytest.raises(ValueError, match="divisible"):
    L.pixel_pack(jnp.zeros((1, 6, 8, 1)), 4)


def test_space_to_depth_order_tl_bl_tr_br():
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  y = np.asarray(L.space_to_depth2(x))[0, 0, 0]  # the 2x2 cell [[0, 1], [4, 5]]
  np.testing.assert_array_equal(y, [0.0, 4.0, 1.0, 5.0])


def test_sine_position_embedding_closed_form():
  pe = L.sine_position_embedding(3, 5, 8)  # npf = 4: dim_t = (1, 1, 100, 100)
  assert pe.shape == (3, 5, 8)
  h, w = 2, 4  # y = 3, x = 5
  np.testing.assert_allclose(pe[h, w, :4], [np.sin(3), np.cos(3), np.sin(0.03), np.cos(0.03)],
                             rtol=1e-6)
  np.testing.assert_allclose(pe[h, w, 4:], [np.sin(5), np.cos(5), np.sin(0.05), np.cos(0.05)],
                             rtol=1e-6)


def test_condition_generator_shapes_and_word_mask():
  t = 2
  cg = _make(L.ConditionGenerator, 4, 8, 12, t, 3)
  x = jax.random.normal(KEY, (2, 4, 6, 4))
  text = jax.random.normal(jax.random.key(1), (2, 5, 8))
  mask = jnp.array([[0, 0, 1, 1, 1], [0, 0, 0, 0, 1]], bool)
  z = _run(cg, x, text, mask)
  assert z.shape == (2, 4, 6, 12) and bool(jnp.all(z >= 0))  # BN + ReLU output
  assert cg.q.in_features == 4 * t * t and cg.out.out_features == 12 * t * t
  text2 = jnp.where(mask[..., None], 100.0 * jax.random.normal(jax.random.key(2), text.shape),
                    text)
  np.testing.assert_allclose(np.asarray(_run(cg, x, text2, mask)), np.asarray(z), atol=1e-6)
  text3 = text.at[0, 0].add(1.0)  # a real word of sample 0
  z3 = _run(cg, x, text3, mask)
  assert not np.allclose(np.asarray(z3[0]), np.asarray(z[0]))
  np.testing.assert_allclose(np.asarray(z3[1]), np.asarray(z[1]), atol=1e-6)


def _naive_laconv(x, w, k, g):
  b, h, wd, c = x.shape
  p = k // 2
  xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  out = np.zeros_like(x)
  for bi in range(b):
    for i in range(h):
      for j in range(wd):
        for ch in range(c):
          s = 0.0
          for dy in range(k):
            for dx in range(k):
              s += w[bi, i, j, (ch % g) * k * k + dy * k + dx] * xp[bi, i + dy, j + dx, ch]
          out[bi, i, j, ch] = s
  return out


@pytest.mark.parametrize("impl", ["xla", "pallas_gpu"])
def test_laconv_equals_naive_per_pixel_loop(impl):
  k, g, c = 3, 2, 4
  lc = _make(L.LaConv, c, 6, k, g, impl=impl)
  x = jax.random.normal(KEY, (2, 5, 6, c))
  z = jax.random.normal(jax.random.key(3), (2, 5, 6, 6))
  w = np.asarray(lc.kernels(z))
  assert w.shape == (2, 5, 6, g * k * k)
  y = np.asarray(_run(lc, x, z))
  np.testing.assert_allclose(y, _naive_laconv(np.asarray(x, np.float64), w, k, g), atol=1e-5)
  # Kernel dropout: training with a key drops ~10% of the kernel values, scaled by 1/0.9.
  wd = np.asarray(lc.kernels(z, train=True, rng=jax.random.key(4)))
  kept = wd != 0
  np.testing.assert_allclose(wd[kept], w[kept] / 0.9, rtol=1e-5)
  assert 0.75 < kept.mean() < 0.97


def test_block_translation_equivariant_without_positions():
  blk = _make(L.LaConvBlock, 4, 8, 8, 3, 1, 2, 2, use_pos=False)
  x = jax.random.normal(KEY, (1, 10, 10, 4))
  xs = jnp.concatenate([x, jnp.roll(x, (1, 2), axis=(1, 2))])
  text = jax.random.normal(jax.random.key(1), (2, 3, 8))
  text = text.at[1].set(text[0])
  mask = jnp.zeros((2, 3), bool)
  y, ys = np.asarray(_run(blk, xs, text, mask))
  # Zero padding differs near the borders; the interior is shifted exactly.
  np.testing.assert_allclose(ys[3:-2, 4:-2], y[2:-3, 2:-4], atol=1e-5)
  blk_pos = _make(L.LaConvBlock, 4, 8, 8, 3, 1, 2, 2, use_pos=True)
  yp, ysp = np.asarray(_run(blk_pos, xs, text, mask))
  assert not np.allclose(ysp[3:-2, 4:-2], yp[2:-3, 2:-4], atol=1e-3)


def test_rec_head_decoding():
  head = _make(L.RecHead, 8, 4, 32)
  out = _run(head, jax.random.normal(KEY, (2, 2, 3, 8)), train=False)
  raw, boxes = np.asarray(out["raw"]), np.asarray(out["boxes"])
  assert raw.shape == (2, 2, 3, 5) and boxes.shape == (2, 6, 4) and out["obj"].shape == (2, 6)
  a = 1 * 3 + 2  # row 1, col 2
  np.testing.assert_allclose(boxes[0, a, :2], (raw[0, 1, 2, :2] + [2, 1]) * 32, rtol=1e-5)
  np.testing.assert_allclose(boxes[0, a, 2:], np.exp(raw[0, 1, 2, 2:4]) * 32, rtol=1e-5)
  np.testing.assert_allclose(L.grid_centers(2, 3, 32)[a], [80.0, 48.0])


def test_resize_align_corners_keeps_corners_and_is_linear():
  x = jnp.arange(6.0).reshape(1, 2, 3, 1)
  y = np.asarray(L.resize_align_corners(x, 3, 5))[0, ..., 0]
  np.testing.assert_allclose(y[[0, 0, -1, -1], [0, -1, 0, -1]], [0, 2, 3, 5])
  np.testing.assert_allclose(y[1], [1.5, 2.0, 2.5, 3.0, 3.5])


@pytest.fixture(scope="module")
def tiny_rec():
  return _make(models.build, "laconvnet_tiny", 1, head="rec", text_dim=16, neck_depth=1)


def _inputs(b=2, l=5, d=16):
  x = jax.random.uniform(KEY, (b, 64, 64, 3))
  text = jax.random.normal(jax.random.key(1), (b, l, d))
  mask = jnp.zeros((b, l), bool).at[0, 3:].set(True)
  return x, text, mask


def test_tiny_rec_forward_train_and_eval(tiny_rec):
  m = tiny_rec
  assert m.widths == [8, 16, 16, 32, 32] == models.default_widths("laconvnet_tiny")
  assert sum(len(s.blocks) for s in m.stages) == 5
  g, st = nnx.split(m)

  @jax.jit
  def f(st, x, text, mask, rng):
    mm = nnx.merge(g, st, copy=True)
    tr = mm(x, text, mask, train=True, rng=rng)
    return tr, nnx.state(mm, nnx.BatchStat)

  x, text, mask = _inputs()
  tr, bstats = f(st, x, text, mask, jax.random.key(5))
  assert tr["boxes"].shape == (2, 4, 4) and tr["obj"].shape == (2, 4)
  assert bool(jnp.all(jnp.isfinite(tr["raw"])))
  before = nnx.state(m, nnx.BatchStat)
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before, bstats)
  assert any(jax.tree.leaves(changed))
  # The text conditions the trunk: other words -> other boxes (same key, same dropout).
  tr2 = f(st, x, text[::-1], mask[::-1], jax.random.key(5))[0]
  assert not np.allclose(np.asarray(tr2["raw"]), np.asarray(tr["raw"]))


@pytest.mark.parametrize("head, conv_type, shape", [
    ("res", "laconv", (2, 64, 64)), ("vqa", "laconv", (2, 11)), ("rec", "static", None),
    ("none", "laconv", None)])
def test_tiny_heads_shapes(head, conv_type, shape):
  m = nnx.eval_shape(lambda: models.build("laconvnet_tiny", 11, rngs=_rngs(), head=head,
                                          text_dim=16, neck_depth=1, conv_type=conv_type))
  x, text, mask = _inputs()
  out = nnx.eval_shape(lambda mm, *a: mm(*a, train=True, rng=jax.random.key(0)), m, x, text, mask)
  if head == "rec":
    assert out["boxes"].shape == (2, 4, 4)
    assert not hasattr(m.stages[0].blocks[0], "cond") and m.fusion is not None
  elif head == "none":
    assert [o.shape for o in out] == [(2, 32, 32, 8), (2, 16, 16, 16), (2, 8, 8, 16),
                                      (2, 4, 4, 32), (2, 2, 2, 32)]
  else:
    assert out.shape == shape


def test_res_and_vqa_heads_forward():
  chans = (8, 16, 16)
  feats = [jax.random.normal(KEY, (2, s, s, c)) for s, c in zip((8, 4, 2), chans)]
  res = _make(L.ResHead, chans, 4, (1, 2), 1)
  logits = _run(res, feats, train=False, out_hw=(64, 64))
  assert logits.shape == (2, 64, 64) and bool(jnp.all(jnp.isfinite(logits)))
  vqa = _make(L.VqaHead, 16, 8, 7)
  text = jax.random.normal(jax.random.key(1), (2, 5, 8))
  mask = jnp.array([[0, 0, 1, 1, 1]] * 2, bool)
  text2 = jnp.where(mask[..., None], 50.0, text)
  y, y2 = jnp.split(_run(vqa, jnp.concatenate([feats[1]] * 2), jnp.concatenate([text, text2]),
                         jnp.concatenate([mask, mask])), 2)
  assert y.shape == (2, 7)
  np.testing.assert_allclose(np.asarray(y2), np.asarray(y), atol=1e-5)


def test_spec_layouts_and_param_counts():
  s, b = L.VARIANTS["S"], L.VARIANTS["B"]
  assert s.cond() == (64, 128, 128, 256, 512) == b.cond()
  assert sum(map(len, s.kernels)) == 10 and sum(map(len, b.kernels)) == 19
  m = nnx.eval_shape(lambda: models.build("laconvnet_s", 1, rngs=_rngs(), head="rec"))
  blk = m.stages[0].blocks[0]
  assert blk.cond.q.in_features == 16 * 64 and blk.cond.out.out_features == 64 * 64
  assert blk.laconv.gen.out_features == 3 * 3 * 4 and m.stages[1].blocks[0].laconv.k == 7


def test_bad_arguments():
  with pytest.raises(ValueError, match="variant"):
    L.LaConvNet(rngs=_rngs(), variant="XL")
  with pytest.raises(ValueError, match="head"):
    L.LaConvNet(rngs=_rngs(), variant="tiny", head="det")
  with pytest.raises(ValueError, match="5 entries"):
    models.build("laconvnet_tiny", 1, rngs=_rngs(), widths=[8, 8])
  with pytest.raises(ValueError, match="divide"):
    L.LaConv(6, 4, 3, 4, rngs=_rngs())
