"""AUC / EER / ACC (frame + video level) and attack success / L∞ budget."""
import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score, roc_curve

from jaxvision.evaluators import attack, forgery, ranking


def _data(seed=0, n=300, ties=True):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  s = rng.normal(y * 0.8, 1.0)
  if ties:
    s = np.round(s, 1)  # many tied scores
  return 1 / (1 + np.exp(-s)), y


def test_auc_hand_case_with_ties():
  # pos scores {0.8, 0.5}, neg {0.5, 0.2}: pairs (0.8>0.5),(0.8>0.2),(0.5=0.5 -> 1/2),(0.5>0.2)
  assert ranking.roc_auc([0.8, 0.5, 0.5, 0.2], [1, 1, 0, 0]) == pytest.approx(3.5 / 4)
  assert ranking.roc_auc([0.1, 0.2, 0.9], [0, 0, 1]) == 1.0
  assert ranking.roc_auc([0.9, 0.2, 0.1], [0, 0, 1]) == 0.0
  assert ranking.roc_auc([0.3] * 4, [0, 1, 0, 1]) == 0.5
  with pytest.raises(ValueError, match="one class"):
    ranking.roc_auc([0.1, 0.2], [1, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_eer_match_sklearn(seed):
  s, y = _data(seed)
  assert ranking.roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
  fpr, tpr, _ = roc_curve(y, s)
  ref = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
  assert ranking.eer(s, y) == pytest.approx(ref, abs=1e-9)
  f2, t2, _ = roc_curve(y, s, drop_intermediate=False)
  f1, t1, _ = ranking.roc_curve(s, y)
  np.testing.assert_allclose(f1, f2)
  np.testing.assert_allclose(t1, t2)


def test_auc_invariant_to_monotone_transform():
  s, y = _data(3)
  a = ranking.roc_auc(s, y)
  assert ranking.roc_auc(np.log(s) * 3 + 7, y) == pytest.approx(a, abs=1e-15)
  assert ranking.roc_auc(s ** 5, y) == pytest.approx(a, abs=1e-15)
  assert ranking.eer(np.exp(s), y) == pytest.approx(ranking.eer(s, y), abs=1e-12)


def test_eer_perfect_and_accuracy():
  assert ranking.eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0
  # strict > 0.5: a fake scored exactly 0.5 counts as predicted real.
  assert ranking.accuracy_at([0.5, 0.6, 0.4], [1, 1, 0]) == pytest.approx(2 / 3)


def test_video_level_mean_of_frames():
  s = np.array([0.9, 0.7, 0.2, 0.4, 0.6, 0.1])
  y = np.array([1, 1, 0, 0, 1, 0])
  vid = np.array([7, 7, 3, 3, 5, 9])
  vs, vy, ids = forgery.video_scores(s, y, vid)
  np.testing.assert_array_equal(ids, [3, 5, 7, 9])
  np.testing.assert_allclose(vs, [0.3, 0.6, 0.8, 0.1])
  np.testing.assert_array_equal(vy, [0, 1, 1, 0])
  with pytest.raises(ValueError, match="different labels"):
    forgery.video_scores(s, np.array([1, 0, 0, 0, 1, 0]), vid)


def test_forgery_evaluator_padding_changes_nothing():
  s, _ = _data(4, 100)
  vid = np.arange(100) // 4
  y = (vid % 3 == 0).astype(int)  # one label per video
  s = np.clip(s + 0.3 * y, 0, 1)
  ev = forgery.ForgeryEvaluator()
  ev.update(s, y, vid)
  full = ev.result()
  ev2 = forgery.ForgeryEvaluator()
  for i in range(0, 100, 32):
    n = len(s[i:i + 32])
    pad = 32 - n
    ev2.update(np.r_[s[i:i + 32], np.full(pad, 0.99)], np.r_[y[i:i + 32], np.zeros(pad, int)],
               np.r_[vid[i:i + 32], np.full(pad, 999)], mask=np.r_[np.ones(n), np.zeros(pad)])
  assert ev2.result() == full
  assert full["auc"] == pytest.approx(roc_auc_score(y, s))
  assert set(full) == {"auc", "eer", "acc", "video_auc", "video_eer", "video_acc"}


def test_attack_success_and_budget():
  clean = np.array([1, 2, 3, 4])
  adv_logits = np.eye(5)[[1, 0, 3, 0]]  # changes on rows 1 and 3
  assert attack.success_rate(adv_logits, clean) == 50.0
  assert attack.success_rate(adv_logits, clean, mask=np.array([0, 1, 0, 1])) == 100.0
  assert attack.success_rate([1, 0, 3, 0], labels=[1, 1, 1, 1],
                             criterion="misclassification") == 75.0
  ev = attack.AttackEvaluator(exclude_from_mean=["resnet50"])
  ev.update("vgg16", adv_logits, clean)
  ev.update("resnet50", clean, clean)
  ev.update("inc_v3", [0, 0, 0, 0], clean, mask=[1, 1, 1, 0])
  r = ev.result()
  assert r["success/vgg16"] == 50.0 and r["success/resnet50"] == 0.0
  assert r["success/inc_v3"] == 100.0 and r["success_mean"] == 75.0

  rng = np.random.default_rng(0)
  x = rng.random((3, 8, 8, 3))
  eps = 16 / 255
  adv = np.clip(x + eps * np.sign(rng.normal(size=x.shape)), 0, 1)
  assert attack.check_linf_budget(adv, x, eps)["ok"]
  np.testing.assert_allclose(attack.linf_norm(x, x), 0.0)
  bad = adv.copy()
  bad[1, 0, 0, 0] = x[1, 0, 0, 0] + 2 * eps if x[1, 0, 0, 0] < 0.5 else x[1, 0, 0, 0] - 2 * eps
  rep = attack.check_linf_budget(bad, x, eps)
  assert not rep["ok"] and rep["num_violations"] == 1
  with pytest.raises(ValueError, match="violated by images \\[1\\]"):
    attack.check_linf_budget(bad, x, eps, raise_error=True)
