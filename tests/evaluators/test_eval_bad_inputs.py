"""Evaluators on bad input: a clear error or an honest NaN, never a plausible number."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.evaluators import (attack, classification, compression, forgery, gan,
                                  image_quality as iq, ranking, rec)


def _img(seed=0, shape=(2, 16, 16, 3)):
  return np.random.default_rng(seed).random(shape).astype(np.float32)


# ----------------------------------------------------------------- PSNR / SSIM
def test_psnr_ssim_nan_image_gives_nan_not_100db():
  x = _img()
  y = x.copy()
  y[0, 3, 3, 1] = np.nan
  for q in (True, False):
    p = np.asarray(iq.psnr(y, x, quantize=q))
    assert np.isnan(p[0]) and p[1] == 100.0
  ev = iq.PsnrSsimEvaluator(scale=1)  # one jitted psnr + ssim
  ev.update(y, x, mask=np.array([1, 1]))
  r = ev.result()
  assert np.isnan(r["psnr"]) and np.isnan(r["ssim"])
  ev.reset()
  ev.update(y, x, mask=np.array([0, 1]))  # the NaN image is padding: ignored
  assert ev.result()["psnr"] == 100.0


def test_psnr_ssim_uint8_and_data_range():
  x, z = _img(1), _img(2)
  xu, zu = np.round(x * 255).astype(np.uint8), np.round(z * 255).astype(np.uint8)
  jpsnr = jax.jit(iq.psnr, static_argnames=("data_range",))
  ref_p = np.asarray(jpsnr(x, z))
  # uint8 input: data_range defaults to 255 (same values as the [0, 1] floats)
  np.testing.assert_allclose(iq.psnr(xu, zu), ref_p, rtol=1e-6)
  ssim7 = jax.jit(lambda a, b: iq.ssim(a, b, win_size=7))
  np.testing.assert_allclose(ssim7(xu, zu), ssim7(x, z), rtol=1e-5)
  # float 0..255 with the default data_range=1: refused, naming the fix
  with pytest.raises(ValueError, match="data_range=255"):
    iq.psnr(xu.astype(np.float32), zu.astype(np.float32))
  with pytest.raises(ValueError, match="data_range=255"):
    iq.ssim(xu, zu, data_range=1.0)
  f = jpsnr(xu.astype(np.float32), zu.astype(np.float32), data_range=255)
  np.testing.assert_allclose(f, ref_p, rtol=1e-6)
  # jit: the dtype default still applies (values cannot be checked while tracing)
  np.testing.assert_allclose(jpsnr(jnp.asarray(xu), jnp.asarray(zu)), ref_p, rtol=1e-6)
  ev = iq.PsnrSsimEvaluator(scale=1)
  with pytest.raises(ValueError, match="0..255"):
    ev.update(xu.astype(np.float32), zu.astype(np.float32))
  ev.update(xu, zu)
  ref_c = float(np.mean(jax.jit(lambda a, b: iq.psnr(a, b, crop_border=1))(x, z)))
  assert ev.result()["psnr"] == pytest.approx(ref_c, rel=1e-6)
  # padded junk rows are not range-checked
  ev2 = iq.PsnrSsimEvaluator(scale=1)
  ev2.update(np.r_[x, 255 * x[:1]], np.r_[z, z[:1]], mask=np.array([1, 1, 0]))
  assert ev2.result()["psnr"] == pytest.approx(ref_c, rel=1e-6)


# ------------------------------------------------------------- classification
def test_per_example_nan_logits_never_correct():
  logits = jnp.array([[np.nan] * 4, [0.0, np.nan, 1.0, 2.0], [3.0, 0.0, 1.0, 2.0]])
  labels = jnp.array([0, 3, 0])
  jitted = jax.jit(classification.per_example, static_argnames="topk")
  for fn in (classification.per_example, jitted):
    out = fn(logits, labels, topk=(1, 2))
    np.testing.assert_array_equal(out["top1"], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(out["top2"], [0.0, 0.0, 1.0])
    assert np.isnan(out["loss"][0]) and np.isfinite(out["loss"][2])


def test_per_example_bad_labels():
  logits = jnp.zeros((3, 4)).at[:, 3].set(1.0)
  with pytest.raises(ValueError, match=r"\[0, 4\).*rows \[1\].*\[-1\]"):
    classification.per_example(logits, jnp.array([0, -1, 2]))
  with pytest.raises(ValueError, match=r"\[0, 4\).*\[4\]"):
    classification.per_example(logits, np.array([0, 1, 4]))
  with pytest.raises(ValueError, match="integer class indices.*float32"):
    classification.per_example(logits, jnp.array([0.0, 1.0, 2.9]))
  with pytest.raises(ValueError, match="integer"):
    jax.jit(classification.per_example)(logits, jnp.array([0.0, 1.0, 2.9]))
  # a masked-out (padding) row may hold an ignore label
  out = classification.per_example(logits, jnp.array([3, -1, 3]), mask=np.array([1, 0, 1]))
  np.testing.assert_array_equal(out["top1"], [1.0, 0.0, 1.0])
  # under jit the values cannot raise: -1 is not wrapped to the last class (3)
  out = jax.jit(classification.per_example, static_argnames="topk")(
      logits, jnp.array([3, -1, 7]), topk=(1, 2))
  np.testing.assert_array_equal(out["top1"], [1.0, 0.0, 0.0])
  np.testing.assert_array_equal(out["top2"], [1.0, 0.0, 0.0])
  assert np.isfinite(out["loss"][0]) and np.isnan(out["loss"][1:]).all()
  ev = classification.ClassificationEvaluator(topk=(1,))
  with pytest.raises(ValueError, match="rows \\[1\\]"):
    ev.update(logits, np.array([3, -1, 3]))
  with pytest.raises(ValueError, match="integer"):
    ev.update(logits, np.array([3.0, 3.0, 3.0]))
  ev.update(logits, np.array([3, -1, 0]), mask=np.array([1, 0, 1]))
  assert ev.result()["top1"] == 0.5


# ---------------------------------------------------------------- the others
def test_linf_budget_nan_adversarial_not_ok():
  x = np.full((3, 4, 4, 3), 0.5)
  adv = x.copy()
  adv[1, 0, 0, 0] = np.nan
  rep = attack.check_linf_budget(adv, x, 8 / 255)
  assert not rep["ok"] and rep["num_nonfinite"] == 1
  assert rep["num_violations"] == 1 and rep["num_out_of_range"] == 1
  assert np.isnan(rep["max_linf"])
  with pytest.raises(ValueError, match="non-finite.*\\[1\\]"):
    attack.check_linf_budget(adv, x, 8 / 255, raise_error=True)
  assert attack.check_linf_budget(x, x, 8 / 255)["ok"]


def test_box_iou_nan_box_is_nan():
  a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
  b = np.array([[0, 0, 10, 10], [np.nan, 0, 10, 10], [0, 0, np.inf, 10]], float)
  iou = rec.box_iou(a, b, "xyxy")
  assert iou[0] == 1.0 and np.isnan(iou[1]) and np.isnan(iou[2])
  assert np.isnan(rec.box_iou(b, a, "xywh")[1])
  assert rec.rec_accuracy(a, b, "xyxy") == pytest.approx(100 / 3)  # NaN is a miss
  ev = rec.RecEvaluator("xyxy")
  ev.update(a, b)
  r = ev.result()
  assert np.isnan(r["miou"]) and r["accuracy"] == pytest.approx(100 / 3)


def test_fid_nan_features_clear_error():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
  fake[3, 1] = np.nan
  with pytest.raises(ValueError, match=r"NaN/inf values in rows \[3\]"):
    gan.fid_from_features(real, fake)
  with pytest.raises(ValueError, match="NaN/inf"):
    gan.kid_from_features(real, fake, num_subsets=2, subset_size=5)
  with pytest.raises(ValueError, match="NaN/inf"):
    gan.frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))
  ev = gan.FidEvaluator(real_features=real)
  ev.update(fake)
  with pytest.raises(ValueError, match="fake features contain NaN"):
    ev.result()


def test_model_size_bits_of_none_or_empty_raises():
  with pytest.raises(ValueError, match="got None"):
    compression.model_size_bits(None)
  with pytest.raises(ValueError, match="no arrays"):
    compression.model_size_bits({})
  with pytest.raises(ValueError, match="got None"):
    compression.sparsity_report(None)
  assert compression.model_size_bits({"w": np.ones((2, 3))}, bits=4)["total_bits"] == 24


def test_forgery_acc_rule_at_threshold():
  # Scores exactly at 0.5: '>' calls them real, '>=' (DCL's test script) fake.
  s = np.array([0.5, 0.5, 0.9, 0.1])
  y = np.array([1, 0, 1, 0])
  assert ranking.accuracy_at(s, y) == 0.75  # row 0 (fake at 0.5) missed
  assert ranking.accuracy_at(s, y, rule=">=") == 0.75  # row 1 (real at 0.5) missed
  y2 = np.array([1, 1, 1, 0])
  assert ranking.accuracy_at(s, y2) == 0.5
  assert ranking.accuracy_at(s, y2, rule=">=") == 1.0
  default = forgery.ForgeryEvaluator()
  dcl = forgery.ForgeryEvaluator(acc_rule=">=")
  for ev in (default, dcl):
    ev.update(s, y2, video_ids=np.array([0, 1, 2, 3]))
  rd, rc = default.result(), dcl.result()
  assert (rd["acc"], rc["acc"]) == (0.5, 1.0)
  assert (rd["video_acc"], rc["video_acc"]) == (0.5, 1.0)
  assert rd["auc"] == rc["auc"]
  with pytest.raises(ValueError, match="acc_rule"):
    forgery.ForgeryEvaluator(acc_rule="=>")
  with pytest.raises(ValueError, match="rule"):
    ranking.accuracy_at(s, y, rule="gt")
