"""The `dcl_forgery` evaluator: forgery metrics, its ROC by hand, and the PNG in the context's
workdir."""
import numpy as np
import pytest

from jaxvision.core import evaluation
from jaxvision.evaluators import forgery
from jaxvision.methods.dcl import roc


def _rows():
  scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.6, 0.4])
  labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
  videos = np.array([0, 0, 1, 2, 2, 3, 1, 3])
  return {"score": scores, "label": labels, "video_id": videos}


def test_dcl_forgery_metrics_and_curve(tmp_path):
  ev = evaluation.make("dcl_forgery", curve="t1", acc_rule=">=")
  out = _rows()
  ev.update({k: v[:5] for k, v in out.items()}, np.ones(5))
  ev.update({k: v[5:] for k, v in out.items()}, np.array([1, 1, 0]))  # last row is padding
  got = ev.result({"step": 7})  # no workdir in the context: no PNG
  keep = np.arange(7)
  ref = forgery.ForgeryEvaluator(acc_rule=">=")
  ref.update(out["score"][keep], out["label"][keep], out["video_id"][keep])
  assert got == pytest.approx(ref.result())
  # Frame ROC by hand: 4 fakes (0.9, 0.8, 0.6, 0.3), 3 reals (0.7, 0.2, 0.1).
  fpr, tpr, auc = ev.latest["frame"]
  np.testing.assert_allclose(fpr, [0, 0, 0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 1])
  np.testing.assert_allclose(tpr, [0, 0.25, 0.5, 0.5, 0.75, 1, 1, 1])
  assert auc == pytest.approx(got["auc"]) == pytest.approx(10 / 12)
  # Video ROC: means 0.85 (fake), 0.45 (fake: 0.3, 0.6), 0.45 (real: 0.7, 0.2), 0.1 (real).
  vfpr, vtpr, vauc = ev.latest["video"]
  assert vauc == pytest.approx(got["video_auc"]) == pytest.approx((2 + 1.5) / 4)
  assert vfpr[-1] == vtpr[-1] == 1
  assert roc.written(str(tmp_path), ["t1"]) == {}
  # With the loop's context the PNG lands in the workdir (only on the main process).
  ev.result({"step": 7, "workdir": str(tmp_path / "w"), "is_main": False})
  assert roc.written(str(tmp_path / "w"), ["t1"]) == {}
  ev.result({"step": 7, "workdir": str(tmp_path), "is_main": True})
  paths = roc.written(str(tmp_path), ["t1", "eval"])
  assert paths == {"t1": str(tmp_path / "roc_t1.png")}
  with open(paths["t1"], "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert roc.png_name("eval") == "roc.png"
