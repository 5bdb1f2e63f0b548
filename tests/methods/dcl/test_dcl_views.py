"""DCL views (RandomPatch, SRM, two-view transform), demo fakes and the objective weights."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.methods.dcl import fakes, objective, views


def test_permutation_table():
  p = views.PERMUTATIONS
  assert p.shape == (40, 9)
  assert all(sorted(r) == list(range(9)) for r in p.tolist())
  assert sum(r == list(range(9)) for r in p.tolist()) == 10  # P(no shuffle) = 1/4


def test_random_patch_moves_tiles_and_mask_together():
  s, w = 11, 3  # 3x3 tiles of side 3, a 2-pixel border that stays put
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, s, s, 2)).astype(np.float32)
  m = rng.uniform(size=(2, s, s)).astype(np.float32)
  perm = jnp.asarray(views.PERMUTATIONS[[0, 4]])
  y, ym = views.random_patch(jnp.asarray(x), perm), views.random_patch(jnp.asarray(m), perm)
  tile = lambda a, n: a[(n % 3) * w:(n % 3 + 1) * w, (n // 3) * w:(n // 3 + 1) * w]
  for i in range(2):
    for t in range(9):
      src = int(perm[i, t])
      np.testing.assert_array_equal(tile(np.asarray(y[i]), t), tile(x[i], src))
      np.testing.assert_array_equal(tile(np.asarray(ym[i]), t), tile(m[i], src))
  np.testing.assert_array_equal(np.asarray(y)[:, 9:], x[:, 9:])
  np.testing.assert_array_equal(np.asarray(y)[:, :, 9:], x[:, :, 9:])


def test_srm_kernels_are_high_pass():
  np.testing.assert_allclose(views.SRM_KERNELS.sum((1, 2)), 0, atol=1e-6)
  np.testing.assert_allclose(views.SRM_KERNELS[1, 1:4, 1:4],
                             np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]) / 4)
  const = jnp.full((1, 12, 12, 3), 0.7)
  out = np.asarray(views.srm(const))
  np.testing.assert_allclose(out[:, 2:-2, 2:-2], 0, atol=1e-6)
  assert np.abs(out[:, :2]).max() > 0  # zero padding at the border
  # Channel o sums K_o over the three input channels.
  x = jnp.zeros((1, 9, 9, 3)).at[0, 4, 4, 1].set(1.0)
  np.testing.assert_allclose(np.asarray(views.srm(x))[0, 2:7, 2:7, 2],
                             views.SRM_KERNELS[2][::-1, ::-1], atol=1e-6)


NONE = views.ViewConfig(size=16, raw_flip_prob=0.0, rotate_limit=0.0, cutout_prob=0.0,
                        crop_prob=0.0, flip_prob=0.0, gray_prob=0.0, noise_prob=0.0,
                        color_prob=0.0, blur_prob=0.0, srm_prob=0.0, patch_grid=0)


@pytest.fixture(scope="module")
def batch():
  rng = np.random.default_rng(1)
  img = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
  mask = np.zeros((4, 16, 16), np.float32)
  mask[1:3, 4:10, 2:7] = 1.0
  return jnp.asarray(img), jnp.asarray(mask)


def test_identity_views_and_shared_flip(batch):
  """Only flips on: the raw flip (p 1) mirrors image and mask; the two per-view flips (p 1
  each) cancel; the warp is then exactly the identity resampling."""
  img, mask = batch
  want = (np.asarray(img, np.float32) / 255 - 0.5) / 0.5
  flip = dataclasses.replace(NONE, raw_flip_prob=1.0, flip_prob=1.0)
  q, k, qm = jax.jit(lambda key: views.make_views(key, img, mask, flip))(jax.random.key(0))
  np.testing.assert_allclose(q, want[:, :, ::-1], atol=1e-5)
  np.testing.assert_allclose(k, want[:, :, ::-1], atol=1e-5)
  np.testing.assert_allclose(qm, np.asarray(mask)[:, :, ::-1], atol=1e-6)


def test_full_views_shapes_ranges_and_mask_patch(batch):
  img, mask = batch
  cfg = views.ViewConfig(size=12)
  f = jax.jit(lambda key: views.make_views(key, img, mask, cfg))
  q, k, qm = f(jax.random.key(3))
  assert q.shape == k.shape == (4, 12, 12, 3) and qm.shape == (4, 12, 12)
  assert q.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(q)))
  assert float(qm.min()) >= 0 and float(qm.max()) <= 1
  assert float(jnp.abs(qm[0]).max()) == 0 and float(jnp.abs(qm[3]).max()) == 0  # reals
  assert not np.allclose(q, k)  # independent draws
  q2, _, _ = f(jax.random.key(4))
  assert not np.allclose(q, q2)
  with pytest.raises(ValueError, match="masks must be"):
    views.make_views(jax.random.key(0), img, mask[:, :8], cfg)


def test_fakes_blend_only_inside_mask():
  faces = fakes.lfw_faces(32)
  assert faces.shape == (100, 32, 32) and faces.dtype == np.float32
  rng = np.random.default_rng(0)
  base = faces[:6]
  for v in fakes.VARIANTS:
    fake, m = fakes.blend(rng, base, faces[6:12], v)
    assert fake.shape == base.shape and m.shape == base.shape
    out = m == 0
    np.testing.assert_allclose(fake[out], base[out], atol=1e-6)  # untouched outside the mask
    assert (m >= 0.45).any(axis=(1, 2)).all()
    assert np.abs(fake - base).max() > 0.02
  with pytest.raises(ValueError, match="unknown blending variant"):
    fakes.blend(rng, base, base, "deepfake")


def test_fake_source_carries_its_own_texture_and_reals_are_fresh_frames():
  from scipy import ndimage
  faces = fakes.lfw_faces(32)[:20]
  out = fakes._source_artifacts(np.random.default_rng(0), faces)  # pylint: disable=protected-access
  r = out - faces
  high = r - ndimage.gaussian_filter(r, (0, 1, 1))
  assert high.std(axis=(1, 2)).min() > 0.05   # pixel noise sd >= 0.06 on every source
  d = fakes.make_split(faces, range(4), variants=("sbi",), copies=1, seed=0, real_copies=2)
  reals = d["image"][d["label"] == 0][..., 0].astype(np.float32)
  assert np.abs(reals[:4] - reals[4:]).mean(axis=(1, 2)).min() > 2  # two jittered frames


def test_make_split_layout_and_determinism():
  faces = fakes.lfw_faces(32)
  d = fakes.make_split(faces, range(5), variants=("sbi", "mouth"), copies=2, seed=7)
  n = 5 * 2 * 3
  assert d["image"].shape == (n, 32, 32, 3) and d["image"].dtype == np.uint8
  assert (d["label"] == 1).sum() == 20 and (d["label"] == 0).sum() == 10
  assert np.all(d["mask"][d["label"] == 0] == 0)
  assert np.all(d["mask"][d["label"] == 1].max(axis=(1, 2)) > 0)
  assert set(d["variant"].tolist()) == {-1, 0, 2}
  # Each video holds one face's frames of one kind (2 copies), with one label.
  for vid in np.unique(d["video_id"]):
    sel = d["video_id"] == vid
    assert sel.sum() == 2 and len(set(d["label"][sel])) == 1
  d2 = fakes.make_split(faces, range(5), variants=("sbi", "mouth"), copies=2, seed=7)
  np.testing.assert_array_equal(d["image"], d2["image"])


def test_loss_weights_warmup_then_half_half():
  cfg = objective.ObjectiveConfig()
  for ep in (0, 1):
    w = objective.loss_weights(ep, cfg)
    assert {k: float(v) for k, v in w.items()} == {"ce": 1.0, "inter": 0.0, "intra_fake": 0.0,
                                                    "intra_real": 0.0}
  w = {k: float(v) for k, v in objective.loss_weights(2, cfg).items()}
  assert w == pytest.approx({"ce": 0.5, "inter": 0.5, "intra_fake": 0.05, "intra_real": 0.0005})
  terms = {"ce": jnp.array(2.0), "inter": jnp.array(4.0), "intra_fake": jnp.array(1.0),
           "intra_real": jnp.array(-100.0)}
  assert float(objective.combine(terms, objective.loss_weights(5, cfg))) == pytest.approx(
      1 + 2 + 0.05 - 0.05)
  with pytest.raises(ValueError, match="temperature"):
    objective.ObjectiveConfig(temperature=0.0)


def test_dcl_net_embedding(tiny_backbone):
  net = objective.DCLNet(tiny_backbone(nnx.Rngs(0)), rngs=nnx.Rngs(1))
  out = net(jax.random.normal(jax.random.key(0), (2, 16, 16, 3)), train=False)
  assert out["logits"].shape == (2, 2) and out["fmap"].shape == (2, 4, 4, 8)
  assert out["embedding"].shape == (2, 16)  # h * w
  np.testing.assert_allclose(jnp.linalg.norm(out["embedding"], axis=-1), 1.0, rtol=1e-5)
  want = np.asarray(out["fmap"]) @ np.asarray(net.squeeze.kernel.get_value()).reshape(8, 1)
  want = want.reshape(2, -1) + float(net.squeeze.bias.get_value()[0])
  np.testing.assert_allclose(out["embedding"], want / np.linalg.norm(want, axis=1, keepdims=True),
                             rtol=1e-4, atol=1e-5)
  with pytest.raises(TypeError, match="features"):
    objective.DCLNet(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(0), channels=2)
  # embed_channels 3: the squeeze keeps 3 channels, flattened per pixel (h * w * 3).
  net3 = objective.DCLNet(tiny_backbone(nnx.Rngs(0)), rngs=nnx.Rngs(1), embed_channels=3)
  out3 = net3(jax.random.normal(jax.random.key(0), (2, 16, 16, 3)), train=False)
  want3 = (np.asarray(out3["fmap"]) @ np.asarray(net3.squeeze.kernel.get_value()).reshape(8, 3)
           + np.asarray(net3.squeeze.bias.get_value())).reshape(2, 48)
  np.testing.assert_allclose(out3["embedding"],
                             want3 / np.linalg.norm(want3, axis=1, keepdims=True),
                             rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="embed_channels"):
    objective.DCLNet(tiny_backbone(nnx.Rngs(0)), rngs=nnx.Rngs(1), embed_channels=0)


def test_dcl_model_torch_names():
  """'dcl_net' maps its layers to timm names and to the official DCL checkpoint names."""
  from jaxvision import models
  from jaxvision.models import torch_import
  m = nnx.eval_shape(lambda: models.build("dcl_net", 2, rngs=nnx.Rngs(0),
                                          backbone="tf_efficientnet_b0"))
  rules = m.torch_naming_rules()
  keys = {k for k, *_ in torch_import._expected(m, rules["dcl_official"])}
  for k in ("encoder_q.encoder.conv_stem.weight", "encoder_q.encoder.blocks.0.0.conv_dw.weight",
            "encoder_q.encoder.blocks.6.0.conv_pwl.weight", "encoder_q.encoder.bn2.running_var",
            "encoder_q.fc.weight", "encoder_q.feature_squeeze.bias"):
    assert k in keys, k
  timm = {k for k, *_ in torch_import._expected(m, rules["timm"])}
  assert "classifier.weight" in timm and "feature_squeeze.weight" in timm
  assert len(keys) == len(timm)
