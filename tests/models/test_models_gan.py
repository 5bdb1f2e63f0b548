"""GAN zoo (GCC): paper MAC anchors, conv-transpose / pixel-shuffle parity with PyTorch, shapes,
KD feature widths, pruned U-Net structure, spectral norm, self-attention, bad widths."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import flops, models
from jaxvision.models import gan

G_A = [24, 48, 86, 72, 86, 47, 86, 44, 86, 43, 86, 43, 86, 29, 86, 30, 86, 37, 86, 36, 86, 48, 24]
G_B = [24, 48, 96, 91, 96, 73, 96, 62, 96, 61, 96, 74, 96, 54, 96, 51, 96, 58, 96, 81, 96, 48, 24]


def _macs(name, **kw):
  return flops.count(name, convention="thop_conv", num_classes=3, **kw)["flops"]


def _unet_closed_form(ngf, n=8, hw=256, cin=3, cout=3):
  """thop-legacy MACs of the U-Net by hand: down convs out*cin*16 (no bias); up conv-transposes
  out*cin*16 (output-based), + out for the outermost bias."""
  d = [ngf * min(2 ** i, 8) for i in range(n)]
  total, prev = 0, cin
  for i in range(n):
    total += (hw >> (i + 1)) ** 2 * d[i] * prev * 16
    prev = d[i]
  for i in range(n, 0, -1):          # level i up conv: output at hw / 2^(i-1)
    up_in = d[i - 1] if i == n else 2 * d[i - 1]
    out_c = cout if i == 1 else d[i - 2]
    out = (hw >> (i - 1)) ** 2 * out_c
    total += out * up_in * 16 + (out if i == 1 else 0)
  return total


def test_paper_mac_anchors():
  unet = _macs("pix2pix_unet")
  assert unet == _unet_closed_form(64) == 18_140_561_408          # "18.14 G conv-only"
  assert _macs("pix2pix_unet", ngf=32) == _unet_closed_form(32)   # 4.65 G prototype
  assert round(_macs("pix2pix_unet", ngf=32) / 1e7) == 465
  assert round(_macs("resnet_generator") / 1e7) == 5683           # 56.83 G
  assert abs(_macs("mobile_resnet_generator", widths=G_A) / 1e9 - 2.398) < 1e-3
  assert abs(_macs("mobile_resnet_generator", widths=G_B) / 1e9 - 2.708) < 1e-3
  assert round(_macs("mobile_resnet_generator") / 1e7) == 1837     # 18.37 G mobile ngf 64
  assert round(_macs("mobile_resnet_generator", ngf=24) / 1e7) == 292  # 2.92 G prototype


def test_conv_transpose_flops_conventions():
  m = gan.conv_transpose(5, 7, 4, stride=2, padding=1, bias=True, rngs=nnx.Rngs(0))

  class Wrap(nnx.Module):
    def __init__(self):
      self.ct = m

    def __call__(self, x, train=False):
      return self.ct(x)

  w = Wrap()
  r_thop = flops.count(w, input_shape=(3, 3, 5), convention="thop_conv")
  r_macs = flops.count(w, input_shape=(3, 3, 5), convention="macs")
  out = 6 * 6 * 7
  assert r_thop["layers"][0]["kind"] == "conv_transpose"
  assert r_thop["flops"] == out * 5 * 16 + out                    # output-based + bias
  assert r_macs["flops"] == 3 * 3 * 5 * 16 * 7 == r_thop["macs"]  # true MACs (4x fewer)


@pytest.mark.parametrize("k,s,p,op", [(4, 2, 1, 0), (3, 2, 1, 1), (4, 1, 0, 0)])
def test_conv_transpose_matches_torch(k, s, p, op):
  torch = pytest.importorskip("torch")
  ct = torch.nn.ConvTranspose2d(3, 5, k, stride=s, padding=p, output_padding=op)
  x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
  want = ct(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
  m = gan.conv_transpose(3, 5, k, stride=s, padding=p, output_padding=op, rngs=nnx.Rngs(0))
  m.kernel[...] = jnp.asarray(ct.weight.detach().numpy().transpose(2, 3, 1, 0))
  m.bias[...] = jnp.asarray(ct.bias.detach().numpy())
  got = np.asarray(m(jnp.asarray(x.transpose(0, 2, 3, 1))))
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_pixel_shuffle_matches_torch():
  torch = pytest.importorskip("torch")
  x = np.arange(2 * 12 * 3 * 2, dtype=np.float32).reshape(2, 12, 3, 2)
  want = torch.nn.functional.pixel_shuffle(torch.from_numpy(x), 2).numpy().transpose(0, 2, 3, 1)
  got = np.asarray(gan.pixel_shuffle(jnp.asarray(x.transpose(0, 2, 3, 1)), 2))
  np.testing.assert_array_equal(got, want)


def _abstract(name, num_classes, **kw):
  return nnx.eval_shape(lambda: models.build(name, num_classes, rngs=nnx.Rngs(0), **kw))


def _call_shapes(model, *shapes, **call_kw):
  """Output shapes of model(*inputs, **call_kw) by tracing only (jax.eval_shape, no compile)."""
  g, st = nnx.split(model)
  out = jax.eval_shape(lambda st, *xs: nnx.merge(g, st)(*xs, **call_kw), st,
                       *[jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes])
  return jax.tree.map(lambda a: a.shape, out)


def test_shapes_and_kd_feature_widths():
  unet = _abstract("pix2pix_unet", 3, ngf=4, num_downs=4)
  y, f = _call_shapes(unet, (2, 32, 32, 3), train=True, features=True)
  assert y == (2, 32, 32, 3)
  assert [a[-1] for a in f] == unet.kd_widths() == [8, 32, 32, 16]
  assert [a[1] for a in f] == [8, 2, 2, 8]
  p, e = _call_shapes(_abstract("patchgan", 1, ndf=4, n_layers=2, gates=True), (2, 32, 32, 6),
                      train=True, features=True)
  assert p == (2, 6, 6, 1) and e == [(2, 8, 8, 8), (2, 7, 7, 16)]
  for k in ("mobile_resnet_generator", "resnet_generator"):
    y, f = _call_shapes(_abstract(k, 3, ngf=4, n_blocks=3), (2, 32, 32, 3), features=True)
    assert y == (2, 32, 32, 3) and f == [(2, 8, 8, 16)] * 4
  sag = _abstract("sagan_generator", 3, ngf=8, z_dim=16)
  y, f = _call_shapes(sag, (2, 16), train=True, features=True)
  assert y == (2, 64, 64, 3) and [a[-1] for a in f] == sag.kd_widths() == [32, 8]
  sad = _abstract("sagan_discriminator", 1, ndf=8, gates=True)
  assert _call_shapes(sad, y, train=True) == (2,)
  assert [a.shape[0] for a in jax.tree.leaves(nnx.state(sad, gan.GateAlpha))] == [8, 16, 32, 64]
  assert _call_shapes(_abstract("srresnet", 3, n_channels=8, n_blocks=4), (1, 12, 12, 3)) == (
      1, 48, 48, 3)
  assert _call_shapes(_abstract("srgan_discriminator", 1, n_channels=8, gates=True),
                      (1, 48, 48, 3)) == (1, 1)


def test_pruned_unet_concat_widths_and_removed_levels():
  # d = [5, 7, 3, 6, 9, 0], u6..u2 = [0, 4, 2, 6, 1]: level 6 removed, level 5 is the deepest.
  w = [5, 7, 3, 6, 9, 0, 0, 4, 2, 6, 1]
  m = _abstract("pix2pix_unet", 3, widths=w, num_downs=6)
  assert m.depth == 5 and len(m.levels) == 5
  up_in = [lv.up_conv.in_features for lv in m.levels]
  # level i reads d_i + u_{i+1}; the deepest reads d_5 only.
  assert up_in == [5 + 1, 7 + 6, 3 + 2, 6 + 4, 9]
  assert [lv.up_conv.out_features for lv in m.levels] == [3, 1, 6, 2, 4]
  assert _call_shapes(m, (1, 64, 64, 3), train=True) == (1, 64, 64, 3)
  with pytest.raises(ValueError, match="must have width 0 too"):
    gan.UnetGenerator(3, rngs=nnx.Rngs(0), widths=[5, 7, 3, 6, 0, 2, 0, 0, 2, 6, 1], num_downs=6)


def test_bad_widths_raise_one_line_errors():
  with pytest.raises(ValueError, match="residual width must equal c2"):
    gan.MobileResnetGenerator(3, rngs=nnx.Rngs(0), widths=[4, 8, 16, 16, 15] + [16, 16] * 2 +
                              [8, 4], n_blocks=3)
  with pytest.raises(ValueError, match="must have 4 entries"):
    gan.PatchDiscriminator(1, rngs=nnx.Rngs(0), widths=[1, 2])


def test_dropout_levels_and_init_quirk():
  m = _abstract("pix2pix_unet", 3, ngf=2)
  assert [lv.use_dropout for lv in m.levels] == [False] * 4 + [True] * 3 + [False]
  r = nnx.Rngs(0)
  bn = gan._bn(512, rngs=r, dtype=jnp.float32, beta_std=1.0)
  assert 0.8 < float(jnp.std(bn.bias[...])) < 1.2            # GCC quirk: BN beta ~ N(0, 1)
  assert abs(float(jnp.std(bn.scale[...])) - 0.02) < 0.005     # gamma ~ N(1, 0.02)
  assert float(jnp.abs(gan._bn(8, rngs=r, dtype=jnp.float32, beta_std=0.0).bias[...]).max()) == 0


def test_spectral_norm_normalises_by_top_singular_value():
  conv = nnx.Conv(3, 4, (3, 3), padding="SAME", rngs=nnx.Rngs(0))
  sn = gan.SpectralNorm(conv, rngs=nnx.Rngs(1))
  for _ in range(50):
    sn.sigma(update=True)
  w = np.asarray(sn._matrix())
  top = np.linalg.svd(w, compute_uv=False)[0]
  assert abs(float(sn.sigma(update=False)) - top) < 1e-4 * top
  x = jax.random.normal(jax.random.key(0), (1, 5, 5, 3))
  got = sn(x, train=False)
  k = conv.kernel[...] / sn.sigma(update=False)
  want = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC")) + conv.bias[...]
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
  # gradient of sigma w.r.t. W is u v^T (u, v held constant)
  g = jax.grad(lambda kk: (sn.u[...] @ (jnp.transpose(kk, (3, 2, 0, 1)).reshape(4, -1)
                                        @ sn.v[...])))(conv.kernel[...])
  assert np.isfinite(np.asarray(g)).all()


def test_self_attention_naive_loop():
  att = gan.SelfAttention(16, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (1, 3, 3, 16))
  assert np.allclose(att(x), x)                       # gamma = 0 at init
  att.gamma[...] = jnp.ones((1,))
  q = np.asarray(att.query_conv(x)).reshape(9, -1)
  k = np.asarray(att.key_conv(x)).reshape(9, -1)
  v = np.asarray(att.value_conv(x)).reshape(9, -1)
  want = np.zeros((9, 16))
  for i in range(9):
    e = np.array([q[i] @ k[j] for j in range(9)])
    a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
    want[i] = sum(a[j] * v[j] for j in range(9))
  want = want.reshape(1, 3, 3, 16) + np.asarray(x)
  np.testing.assert_allclose(np.asarray(att(x)), want, atol=1e-5)


def test_registered_with_default_widths():
  for name in ("pix2pix_unet", "patchgan", "mobile_resnet_generator", "resnet_generator",
               "sagan_generator", "sagan_discriminator", "srresnet", "srgan_discriminator"):
    assert name in models.list_models()
    assert isinstance(models.default_widths(name), list)
  assert models.default_widths("pix2pix_unet", ngf=2, num_downs=4) == [2, 4, 8, 16, 8, 4, 2]
  assert models.input_shape("pix2pix_unet") == (256, 256, 3)
