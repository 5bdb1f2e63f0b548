"""AutoDL protocol (spec §11.3): ingestion in a child process, scorer outside.

Submissions here are tiny numpy-only `model.py` folders, so each run costs a
Python start-up, not a JAX compile."""
import json
import os
import time

import numpy as np
import pytest

from jaxvision.autodl import demo_data, run, scoring
from jaxvision.evaluators import autodl as ev

MODEL = '''
import time
import numpy as np

class Model:
  def __init__(self, metadata):
    self.k = metadata.get_output_size()
    self.calls = 0
    self.done_training = False

  def train(self, dataset, remaining_time_budget=None):
    self.calls += 1
    self.n = sum(1 for _ in dataset) if self.calls == 1 else self.n
    {train}

  def test(self, dataset, remaining_time_budget=None):
    n = sum(1 for _ in dataset)
    y = np.random.default_rng(self.calls).random((n, self.k))
    {test}
    return y
'''


def _submission(tmp_path, name, train="pass", test="pass"):
  d = tmp_path / name
  d.mkdir()
  (d / "model.py").write_text(MODEL.replace("{train}", train).replace("{test}", test))
  return str(d)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return demo_data.make_tiny_autodl(str(tmp_path_factory.mktemp("data")), "tabular")


def _preds(out, task="tiny_tabular"):
  return sorted((f for f in os.listdir(out) if f.startswith(f"{task}.predict_")),
                key=lambda f: int(f.rsplit("_", 1)[1]))


def test_normal_run_shapes_timestamps_and_done_training(tiny, tmp_path):
  code = _submission(tmp_path, "ok", train="self.done_training = self.calls >= 3")
  out = str(tmp_path / "out")
  res = run.run(tiny, out, code, time_budget=30.0)
  # done_training is read at the loop head: the 3rd train sets it, its test still runs
  assert res["num_predictions"] == 3 and res["ingestion_success"] == 1 and not res["errors"]
  sol = np.loadtxt(os.path.join(tiny, "tiny_tabular.solution"))
  for f in _preds(out):
    p = np.loadtxt(os.path.join(out, f))
    assert p.shape == sol.shape == (60, 3) and np.isfinite(p).all()
    assert p.min() >= 0 and p.max() <= 1
  ts = res["timestamps"]
  assert all(b > a for a, b in zip(ts, ts[1:])) and 0 <= ts[0] and ts[-1] <= 30.0
  # the scorer's NAUC/ALC are the evaluator's, on the written files
  naucs = [ev.nauc(sol, np.loadtxt(os.path.join(out, f))) for f in _preds(out)]
  np.testing.assert_allclose(res["nauc_scores"], naucs)
  assert res["score"] == pytest.approx(ev.alc(ts, naucs, 60.0, 30.0))
  assert os.path.getsize(os.path.join(out, "learning_curve.png")) > 1000
  assert json.load(open(os.path.join(out, "scores.json")))["score"] == res["score"]
  start = scoring.read_yaml(os.path.join(out, "start.txt"))
  assert start["task_name"] == "tiny_tabular" and start["time_budget"] == 30.0


def test_sleeping_model_is_killed_and_keeps_earlier_predictions(tiny, tmp_path):
  code = _submission(tmp_path, "sleepy", train="time.sleep(600) if self.calls == 3 else None")
  out = str(tmp_path / "out")
  t = time.time()
  res = run.run(tiny, out, code, time_budget=4.0)
  assert time.time() - t < 60  # never hangs on the sleeping train call
  assert res["num_predictions"] == 2 and len(_preds(out)) == 2
  assert any("killed" in e for e in res["errors"])
  assert not os.path.exists(os.path.join(out, "end.txt"))
  assert res["score"] != 0.0


@pytest.mark.parametrize("case,test,msg", [
    ("shape", "y = y[:, :-1] if self.calls == 2 else y", "BadPredictionShapeError"),
    ("nan", "y[0, 0] = np.nan if self.calls == 2 else y[0, 0]", "NaN"),
    ("raises", "1 / 0 if self.calls == 2 else None", "ZeroDivisionError"),
])
def test_bad_predictions_flagged_earlier_kept(tiny, tmp_path, case, test, msg):
  code = _submission(tmp_path, case, test=test)
  res = run.run(tiny, str(tmp_path / "out"), code, time_budget=30.0)
  assert res["ingestion_success"] == 0
  assert res["num_predictions"] == 1  # the first prediction still counts
  assert any(msg in e for e in res["errors"]), res["errors"]


def test_missing_solution_and_metadata_do_not_hang(tiny, tmp_path):
  import shutil
  d = str(tmp_path / "broken")
  shutil.copytree(tiny, d)
  os.remove(os.path.join(d, "tiny_tabular.solution"))
  code = _submission(tmp_path, "ok")
  res = run.run(d, str(tmp_path / "o1"), code, time_budget=2.0)
  assert res["score"] == 0.0 and any("missing solution" in e for e in res["errors"])
  os.remove(os.path.join(d, "tiny_tabular.data", "test", "metadata.textproto"))
  res = run.run(d, str(tmp_path / "o2"), code, time_budget=2.0)
  assert res["ingestion_success"] == 0 and any("missing metadata" in e for e in res["errors"])


def test_predictions_after_budget_ignored_by_scorer(tiny, tmp_path):
  """A hand-written ingestion output: perfect predictions at 6 s and at 70 s > T = 60."""
  out = tmp_path / "o"
  out.mkdir()
  sol = np.loadtxt(os.path.join(tiny, "tiny_tabular.solution"))
  np.savetxt(out / "tiny_tabular.predict_0", 0.5 * sol + 0.25 * np.eye(3)[np.arange(60) % 3])
  np.savetxt(out / "tiny_tabular.predict_1", sol)
  (out / "start.txt").write_text("task_name: tiny_tabular\ntime_budget: 60\nstart_time: 100.0\n"
                                 "0: 106.0\n1: 170.0\n")
  (out / "end.txt").write_text("ingestion_success: 1\n")
  res = scoring.score_run(tiny, str(out), time_budget=60.0)
  s0 = ev.nauc(sol, np.loadtxt(out / "tiny_tabular.predict_0"))
  assert res["num_predictions"] == 1 and res["nauc_scores"] == [pytest.approx(s0)]
  x0 = np.log1p(6 / 60) / np.log1p(60 / 60)
  assert res["score"] == pytest.approx(s0 * (1 - x0))
  assert any("past T" in e for e in res["errors"])


def test_leaderboard_average_ranks_by_hand():
  alcs = {"a": {"d1": .9, "d2": .5, "d3": .7, "d4": .2, "d5": .6},
          "b": {"d1": .8, "d2": .6, "d3": .7, "d4": .1, "d5": .5},
          "c": {"d1": .1, "d2": .4, "d3": .3, "d4": .9, "d5": .4}}
  # ranks: a 1,2,1.5,2,1 -> 1.5; b 2,1,1.5,3,2 -> 1.9; c 3,3,3,1,3 -> 2.6
  table, ranks = scoring.leaderboard(alcs)
  assert ranks == pytest.approx({"a": 1.5, "b": 1.9, "c": 2.6})
  assert "| a |" in table and "avg rank" in table


def test_init_time_limit_and_charge_init(tiny, tmp_path):
  slow = _submission(tmp_path, "slow_init", train="self.done_training = True")
  src = open(os.path.join(slow, "model.py")).read().replace(
      "self.calls = 0", "self.calls = 0\n    time.sleep(1.5)")
  open(os.path.join(slow, "model.py"), "w").write(src)
  res = run.run(tiny, str(tmp_path / "o1"), slow, time_budget=30.0, init_time_limit=0.5)
  assert res["ingestion_success"] == 0 and any("InitTimeoutError" in e for e in res["errors"])
  # not charged (default): the clock starts after __init__; charged: it includes the 1.5 s
  free = run.run(tiny, str(tmp_path / "o2"), slow, time_budget=30.0)
  charged = run.run(tiny, str(tmp_path / "o3"), slow, time_budget=30.0, charge_init=True)
  assert charged["timestamps"][0] >= 1.5 > free["timestamps"][0]
