"""Every loop evaluator (one protocol: update(outputs, mask) / result(context)) equals its
pure function on the real rows, and padded rows (mask 0, even NaN) never change a result."""
import numpy as np
import pytest

from jaxvision import evaluators as ev
from jaxvision.core.config import ConfigError
from jaxvision.core.registry import LOOP_EVALUATORS
from jaxvision.evaluators import protocol

R = np.random.default_rng(0)
N, PAD = 11, 5  # 11 real rows fed in two batches of 8, the last 5 rows padding


def _batches(out):
  """Splits {key: [N, ...]} into two padded batches of 8 with garbage (NaN) padding rows."""
  full = {}
  for k, v in out.items():
    v = np.asarray(v)
    pad = np.full((PAD,) + v.shape[1:], np.nan if v.dtype.kind == "f" else v.flat[0], v.dtype)
    full[k] = np.concatenate([v, pad])
  mask = np.concatenate([np.ones(N), np.zeros(PAD)]).astype(np.float32)
  return [({k: v[i:i + 8] for k, v in full.items()}, mask[i:i + 8]) for i in (0, 8)]


def _run(kind, out, **options):
  e = protocol.make(kind, **options)
  for b, m in _batches(out):
    e.update(b, m)
  return e.result({"time": 1.0})


def test_mean_and_classification():
  logits = R.normal(size=(N, 5)).astype(np.float32)
  label = R.integers(0, 5, N).astype(np.int32)
  got = _run("classification", {"logits": logits, "label": label}, topk=(1, 2))
  want = ev.per_example(logits, label, (1, 2))
  for k in ("top1", "top2", "loss"):
    assert got[k] == pytest.approx(float(np.mean(np.asarray(want[k]))), rel=1e-6)
  vals = R.normal(size=N).astype(np.float32)
  assert _run("mean", {"v": vals, "img": R.normal(size=(N, 2))})["v"] == pytest.approx(vals.mean())


def test_psnr_ssim_matting_forgery():
  pred = R.uniform(size=(N, 16, 16, 3)).astype(np.float32)
  target = np.clip(pred + R.normal(scale=0.05, size=pred.shape), 0, 1).astype(np.float32)
  got = _run("psnr_ssim", {"pred": pred, "target": target}, scale=2)
  direct = ev.PsnrSsimEvaluator(scale=2)
  direct.update(pred, target)
  assert got == pytest.approx(direct.result())

  alpha_p, alpha_t = R.uniform(size=(2, N, 12, 12)).astype(np.float32)
  trimap = np.where(R.uniform(size=(N, 12, 12)) < 0.5, 128, 255).astype(np.uint8)
  got = _run("matting", {"pred": alpha_p, "target": alpha_t, "trimap": trimap})
  direct = ev.MattingEvaluator()
  direct.update(alpha_p, alpha_t, trimap)
  assert got == pytest.approx(direct.result())

  scores = R.uniform(size=N).astype(np.float32)
  vids = (np.arange(N) // 3).astype(np.int32)
  labels = (vids % 2).astype(np.int32)  # one label per video
  got = _run("forgery", {"score": scores, "label": labels, "video_id": vids}, acc_rule=">=")
  direct = ev.ForgeryEvaluator(acc_rule=">=")
  direct.update(scores, labels, vids)
  assert got == pytest.approx(direct.result())
  assert got["auc"] == pytest.approx(ev.roc_auc(scores, labels))


def test_rec_miou_vqa_alc():
  xy, wh = R.uniform(0, 5, size=(N, 2)), R.uniform(1, 5, size=(N, 2))
  boxes = np.concatenate([xy, xy + wh], 1)
  tgt = boxes + R.uniform(-0.4, 0.4, size=boxes.shape)
  got = _run("rec", {"box": boxes, "target_box": tgt}, box_format="xyxy")
  assert got["accuracy"] == pytest.approx(ev.rec_accuracy(boxes, tgt, "xyxy"))

  gt = R.integers(0, 3, size=(N, 6, 6))
  pr = R.integers(0, 3, size=(N, 6, 6))
  got = _run("miou", {"gt": gt, "pred": pr}, num_classes=3)
  assert got["miou"] == pytest.approx(ev.miou(ev.confusion_matrix(gt, pr, 3)))

  vocab = ["yes", "no", "2", "red"]
  ans = R.integers(0, 4, N)
  gts = R.integers(0, 4, size=(N, 10))
  got = _run("vqa", {"answer": ans, "gt_answers": gts}, vocab=vocab)
  want = np.mean([ev.vqa_accuracy(vocab[a], [vocab[g] for g in row]) for a, row in zip(ans, gts)])
  assert got["accuracy"] == pytest.approx(100 * want)  # the official evaluation reports %

  sol = np.eye(3)[R.integers(0, 3, N)]
  pred = R.uniform(size=(N, 3))
  got = _run("autodl_alc", {"prediction": pred, "solution": sol})
  assert got["nauc"] == pytest.approx(ev.nauc(sol, pred))


def test_every_registered_evaluator_is_covered():
  covered = {"mean", "classification", "psnr_ssim", "matting", "forgery", "rec", "miou", "vqa",
             "autodl_alc", "fid", "attack_success",
             "niqe"}  # niqe: tests/evaluators/test_niqe.py (padding, mask, value)
  names = LOOP_EVALUATORS.names()
  ours = {n for n in names if LOOP_EVALUATORS.get(n).__module__ == protocol.__name__}
  assert ours == covered  # (methods may register their own, e.g. laconv_vqa)


def test_bad_options_and_keys_fail_clearly():
  with pytest.raises(ConfigError, match="unknown keys"):
    protocol.make("classification", keys={"logitz": "x"})
  with pytest.raises(ConfigError, match="vocab"):
    protocol.make("vqa")
  evs = protocol.from_config({"acc": {"type": "classification"}})
  with pytest.raises(ConfigError, match=r"\['logits'\]"):
    protocol.check_outputs(evs, {"label", "probs"}, "config.evals.eval")
