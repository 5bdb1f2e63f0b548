"""The AutoDL scoring program (autodl.md §4; kit `score.py` v20191219).

Reads the ingestion output (start.txt timestamps, `<task>.predict_<i>`,
end.txt) and the dataset's solution, scores each valid prediction by NAUC
and the task by ALC (t0, log time axis, predictions after T dropped) with
`jaxvision.evaluators.autodl`, and writes scores.txt, scores.json and the
learning-curve PNG. `leaderboard` ranks participants over datasets.
"""
from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np

from jaxvision.autodl import data as data_lib
from jaxvision.evaluators import autodl as ev


def read_yaml(path: str) -> dict:
  """The flat `key: value` files the kit writes (start.txt, end.txt)."""
  out = {}
  if not os.path.exists(path):
    return out
  with open(path) as fh:
    for line in fh:
      k, sep, v = line.partition(":")
      if not sep:
        continue
      v = v.strip()
      try:
        out[k.strip()] = float(v) if any(c in v for c in ".e") or v.lstrip("-").isdigit() else v
      except ValueError:
        out[k.strip()] = v
  return out


def score_run(dataset_dir: str, output_dir: str, *, time_budget: float | None = None,
              t0: float = ev.T0, title: str = "", notes: list | None = None) -> dict:
  """Scores one ingestion output folder; returns (and writes) the score dict."""
  errors = list(notes or [])
  result = {"score": 0.0, "alc": 0.0, "nauc": 0.0, "Duration": 0.0, "timestamps": [],
            "nauc_scores": [], "num_predictions": 0}
  start = read_yaml(os.path.join(output_dir, "start.txt"))
  end = read_yaml(os.path.join(output_dir, "end.txt"))
  T = float(time_budget if time_budget is not None else start.get("time_budget", ev.TIME_BUDGET))
  result.update(time_budget=T, t0=t0, ingestion_success=int(end.get("ingestion_success", 0)))
  if "error" in end:
    errors.append(f"ingestion: {str(end['error']).strip(chr(39))}")
  if not end:
    errors.append("ingestion ended without end.txt (killed or crashed)")
  try:
    solution = data_lib.load_solution(dataset_dir)
    task, _ = data_lib.find_data_dir(dataset_dir)
  except (data_lib.AutoDLFormatError, OSError, ValueError) as e:
    errors.append(f"scoring: {e}")
    solution, task = None, None
  ts, scores, last_valid = [], [], -1
  if solution is not None and "start_time" in start:
    t_start = float(start["start_time"])
    i = 0
    while str(i) in start:
      path = os.path.join(output_dir, f"{task}.predict_{i}")
      t = float(start[str(i)]) - t_start
      try:
        pred = np.loadtxt(path, ndmin=2)
        if pred.shape != solution.shape:
          raise ValueError(f"shape {pred.shape} != solution {solution.shape}")
        s = ev.nauc(solution, pred)
      except (OSError, ValueError) as e:
        errors.append(f"prediction {i} skipped: {e}")
        i += 1
        continue
      if t > T:
        errors.append(f"prediction {i} at t={t:.2f}s is past T={T:g}s; ignored")
      else:
        ts.append(t)
        scores.append(s)
        last_valid = i
      i += 1
  if ts:
    result.update(score=ev.alc(ts, scores, t0, T), nauc=scores[-1], Duration=ts[-1],
                  timestamps=ts, nauc_scores=scores, num_predictions=len(ts))
    last_pred = np.loadtxt(os.path.join(output_dir, f"{task}.predict_{last_valid}"), ndmin=2)
    if np.all(solution.sum(1) == 1):  # one-hot: the kit also logs accuracy
      result["accuracy"] = ev.onehot_accuracy(solution, last_pred)
  result["alc"] = result["score"]
  result["errors"] = errors
  with open(os.path.join(output_dir, "scores.txt"), "w") as fh:
    fh.write(f"score: {result['score']:.6f}\nDuration: {result['Duration']:.2f}\n"
             f"timestamps: {[round(t, 3) for t in ts]}\n"
             f"nauc_scores: {[round(s, 6) for s in scores]}\n")
  with open(os.path.join(output_dir, "scores.json"), "w") as fh:
    json.dump(result, fh, indent=1)
  ev.plot_learning_curve(ts, scores, os.path.join(output_dir, "learning_curve.png"), t0=t0,
                         time_budget=T, title=title or (task or ""))
  return result


def leaderboard(alcs: Mapping[str, Mapping[str, float]]) -> tuple[str, dict[str, float]]:
  """alcs: participant -> dataset -> ALC. Returns (markdown table, mean ranks).

  Rank per dataset by ALC (1 = best, ties averaged); the leaderboard rank is
  the mean over datasets (autodl.md §4). Missing entries count as ALC 0.
  """
  names = list(alcs)
  datasets = sorted({d for v in alcs.values() for d in v})
  a = np.array([[alcs[n].get(d, 0.0) for d in datasets] for n in names], np.float64)
  ranks = ev.average_rank(a, names)
  from scipy import stats  # pylint: disable=g-import-not-at-top
  per = stats.rankdata(-a, axis=0)
  lines = ["| participant | " + " | ".join(datasets) + " | avg rank |",
           "|---" * (len(datasets) + 2) + "|"]
  for i, n in enumerate(names):
    cells = [f"{a[i, j]:.4f} ({per[i, j]:g})" for j in range(len(datasets))]
    lines.append(f"| {n} | " + " | ".join(cells) + f" | {ranks[n]:.2f} |")
  return "\n".join(lines), ranks
