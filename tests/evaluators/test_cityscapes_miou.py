"""drn_miou: hand-computed 2-class case, parity with the official PIL post-processing,
weights-file errors."""
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.core import evaluation
from jaxvision.core.errors import ConfigError
from jaxvision.evaluators import cityscapes_miou  # noqa: F401  (registers drn_miou)
from jaxvision.models import common, drn

Image = pytest.importorskip("PIL.Image")


def test_hand_two_class_case():
  """Stride-8 logits: columns 0-1 say class 0, 2-3 class 1 -> after up x8 and the x2 resize
  to the 32x64 label, prediction = left half 0, right half 1. Labels: rows 0-7 ignored (255
  and 2 >= num_classes), rows 8-15 class 0, rows 16-31 class 1.
  C = [[256, 256], [512, 512]]: IoU_0 = 256/1024, IoU_1 = 512/1280, mIoU = 32.5."""
  up = drn.BilinearUp(2, 8, rngs=nnx.Rngs(0))
  d = jnp.array([1.0, 1.0, -1.0, -1.0])
  pattern = jnp.broadcast_to(jnp.stack([d, -d], -1), (2, 4, 2))  # [h/8, w/8, K]
  seen = []

  def logits_fn(x):  # x: the normalised images [B, 16, 32, 3]
    seen.append(x.shape)
    return up(jnp.broadcast_to(pattern, (x.shape[0], 2, 4, 2)))

  ev = evaluation.make("drn_miou", num_classes=2, logits_fn=logits_fn)
  label = np.zeros((32, 64), np.uint8)
  label[:4], label[4:8], label[16:] = 255, 2, 1
  images = np.random.default_rng(0).uniform(size=(2, 16, 32, 3)).astype(np.float32)
  labels = np.stack([label, np.zeros_like(label)])  # row 1 is padding: must not count
  ev.update({"pred": images, "label": labels}, np.array([1, 0]))
  np.testing.assert_array_equal(ev.impl.conf, [[256, 256], [512, 512]])
  res = ev.result()
  assert res["miou"] == pytest.approx(32.5)
  assert res["iou_0"] == pytest.approx(25.0) and res["iou_1"] == pytest.approx(40.0)
  assert res["pixel_acc"] == pytest.approx(50.0)
  assert seen == [(2, 16, 32, 3)]


def _export_npz(m, path):
  """A jaxvision DRNSeg -> its official torch state_dict names/layouts, as an .npz."""
  rule = m.torch_naming_rules()["drn_seg"]
  sd = {}
  for p, mod in common.iter_layers(m):
    key = rule(p)
    if isinstance(mod, nnx.Conv):
      sd[f"{key}.weight"] = np.transpose(np.asarray(mod.kernel.get_value()), (3, 2, 0, 1))
      if mod.bias is not None and mod.bias.get_value() is not None:
        sd[f"{key}.bias"] = np.asarray(mod.bias.get_value())
    else:
      for t, v in (("weight", mod.scale), ("bias", mod.bias), ("running_mean", mod.mean),
                   ("running_var", mod.var)):
        sd[f"{key}.{t}"] = np.asarray(v.get_value())
  np.savez(path, **sd)


def _official(m, fakes_m11, labels, k):
  """The GCC metric/mIoU_score.py pipeline on generator outputs in [-1, 1] (numpy + PIL)."""
  u8 = np.clip((fakes_m11 + 1) / 2.0 * 255.0, 0, 255).astype(np.uint8)  # tensor2imgs
  x = (u8.astype(np.float32) / 255 - np.float32(cityscapes_miou.MEAN)) / np.float32(
      cityscapes_miou.STD)
  up = np.asarray(m(jnp.asarray(x)), np.float64)
  lsm = (up - np.log(np.exp(up - up.max(-1, keepdims=True)).sum(-1, keepdims=True))
         - up.max(-1, keepdims=True)).astype(np.float32)
  h, w = labels.shape[1:]
  hist = np.zeros((k, k), np.int64)
  for i in range(len(u8)):
    chans = [np.asarray(Image.fromarray(lsm[i, :, :, c]).resize((w, h), Image.BILINEAR))
             for c in range(k)]
    pred = np.stack(chans).argmax(0)
    lab = labels[i].astype(np.int64)
    keep = (lab >= 0) & (lab < k)
    hist += np.bincount(k * lab[keep] + pred[keep], minlength=k * k).reshape(k, k)
  return hist


def test_matches_official_pipeline_from_weights_file(tmp_path):
  kw = dict(widths=[4, 4, 4, 4, 4, 4, 8, 8], layers=[1, 1, 1, 1, 1, 1, 1, 1])
  m = drn.DRNSeg(3, rngs=nnx.Rngs(3), **kw)
  _export_npz(m, tmp_path / "drn.npz")
  rng = np.random.default_rng(1)
  fakes = np.tanh(rng.normal(size=(2, 32, 32, 3)) * 2).astype(np.float32)  # generator output
  labels = rng.integers(0, 4, size=(2, 48, 80)).astype(np.uint8)
  labels[:, :5] = 255
  ref = _official(m, fakes, labels, 3)
  ev = evaluation.make("drn_miou", weights=str(tmp_path / "drn.npz"), num_classes=3,
                       model_kw=kw, resize_batch=1)
  pred01 = np.clip((fakes + 1.0) / 2.0, 0.0, 1.0)  # the GCC predict function's "pred"
  ev.update({"pred": pred01, "label": labels}, None)
  np.testing.assert_array_equal(ev.impl.conf, ref)
  assert ref.sum() == np.sum(labels < 3)
  assert np.count_nonzero(ref.sum(0)) >= 2  # the net predicts several classes
  res = ev.result()
  iou = np.diag(ref) / (ref.sum(0) + ref.sum(1) - np.diag(ref)) * 100
  assert res["miou"] == pytest.approx(np.nanmean(iou))
  assert [res[f"iou_{c}"] for c in range(3)] == pytest.approx(list(iou))


def test_weights_missing_off_and_bad_labels(tmp_path, monkeypatch):
  monkeypatch.delenv(cityscapes_miou.ENV_VAR, raising=False)
  missing = str(tmp_path / "drn-d-105_ms_cityscapes.pth")
  with pytest.raises(ConfigError, match="weights not found") as e:
    evaluation.make("drn_miou", weights=missing)
  msg = str(e.value)
  assert "\n" not in msg and missing in msg and "evaluators.<label>.weights=PATH" in msg
  with pytest.raises(ConfigError, match=cityscapes_miou.ENV_VAR):
    evaluation.make("drn_miou")
  with pytest.raises(ConfigError, match="quantize"):
    evaluation.make("drn_miou", weights="off", quantize="ceil")
  off = evaluation.make("drn_miou", weights="off")
  assert off.required_keys() == []
  off.update({}, None)
  assert off.result() == {}
  ev = evaluation.make("drn_miou", num_classes=2, logits_fn=lambda x: x[..., :2])
  assert ev.required_keys() == ["pred", "label"]
  with pytest.raises(ValueError, match=r"labels must be \[B, H, W\]"):
    ev.update({"pred": np.zeros((1, 8, 8, 3)), "label": np.zeros((8, 8))}, None)
  with pytest.raises(ValueError, match="multiples of 8"):
    ev.update({"pred": np.zeros((1, 12, 8, 3)), "label": np.zeros((1, 8, 8))}, None)
