"""AutoDL demo: embedded datasets, the full protocol, seeds and the §7 ablations.

  python -m jaxvision.autodl.demo --workdir=/tmp/autodl_demo            # :demo config
  python -m jaxvision.autodl.demo --config=configs/autodl.py:demo \\
      --config.time_budget=20 --config.num_seeds=3 --workdir=/tmp/autodl_demo

Writes the datasets of `jaxvision.autodl.demo_data` (or uses
config.dataset_dirs), runs `jaxvision.autodl.run` (ingestion in a child
process, scorer here) for every seed x dataset x participant (the full
system, then one participant per ablation), after the offline meta-training of the image and
video nets when config.meta_train (jaxvision.autodl.meta_train), and writes summary.json
(per-dataset ALC/NAUC mean ± std over seeds, failures, per-participant mean
ALC ± std) and leaderboard.md (average ranks on the mean ALCs).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from jaxvision.autodl import config as config_lib
from jaxvision.autodl import demo_data, meta_train, run as run_lib, scoring
from jaxvision.autodl.solution import meta_learner

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/autodl.py[:variant]")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/autodl_demo", "output folder")


def run_demo(c, workdir: str, log=print) -> dict:
  """Runs the whole demo for config `c` (jaxvision.autodl.config); returns the summary."""
  config_lib.check(c)
  os.makedirs(workdir, exist_ok=True)
  if c.dataset_dirs:
    dirs = {os.path.basename(os.path.normpath(d)): d for d in c.dataset_dirs.split(",") if d}
  else:
    dirs = {}
    for name in filter(None, c.datasets.split(",")):
      root = os.path.join(workdir, "data", f"seed{c.data_seed}")
      path = os.path.join(root, name)
      if not os.path.exists(os.path.join(path, f"{name}.solution")):
        t = time.time()
        demo_data.make_dataset(root, name, c.data_seed)
        log(f"wrote {name} in {time.time() - t:.1f}s")
      dirs[name] = path
  if not dirs:
    raise ValueError("no dataset: set config.datasets (demo names) or config.dataset_dirs")
  participants = ["full"] + list(config_lib.ablations(c))
  base_sol = config_lib.solution_overrides(c)
  meta = None
  if c.meta_train:  # offline: before any run, not charged to a budget
    meta_dir = c.meta_dir or os.path.join(workdir, "meta")
    meta = meta_train.meta_train(meta_dir, base_sol, image_steps=c.meta_image_steps,
                                 video_steps=c.meta_video_steps, log=log)
    for dom, over in meta_train.solution_paths(meta_dir).items():
      base_sol[dom] = dict(base_sol.get(dom, {}), **over)
  env = dict(os.environ)
  if c.jax_cache:
    env["JAX_COMPILATION_CACHE_DIR"] = os.path.join(workdir, "jax_cache")
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  raw: dict = {p: {d: [] for d in dirs} for p in participants}
  for seed in range(c.num_seeds):
    for name, ddir in dirs.items():
      for p in participants:
        sol = dict(base_sol, seed=seed)
        if p != "full":
          sol[p] = True
        out = os.path.join(workdir, "runs", p, f"seed{seed}", name)
        t = time.time()
        res = run_lib.run(ddir, out, c.code, c.time_budget, t0=c.t0,
                          init_time_limit=c.init_time_limit, charge_init=c.charge_init,
                          solution_config=sol, env=env)
        raw[p][name].append(res)
        log(f"seed {seed} {name:16s} {p:16s} ALC {res['score']:.4f} NAUC {res['nauc']:.4f} "
            f"preds {res['num_predictions']:2d} first {res['timestamps'][0] if res['timestamps'] else float('nan'):5.1f}s "
            f"wall {time.time() - t:5.1f}s {'; '.join(res['errors'])[:120]}")
  summary = {"config": c.to_dict(), "time_budget": c.time_budget, "t0": c.t0,
             "num_seeds": c.num_seeds, "datasets": list(dirs), "participants": {},
             "weights": meta_learner.weights(meta_learner.options(base_sol)),
             "meta_train": meta}
  for p in participants:
    per = {}
    for d in dirs:
      alcs = [r["score"] for r in raw[p][d]]
      naucs = [r["nauc"] for r in raw[p][d]]
      per[d] = {"alc_mean": float(np.mean(alcs)), "alc_std": float(np.std(alcs)),
                "alcs": alcs, "nauc_final_mean": float(np.mean(naucs)),
                "nauc_final_std": float(np.std(naucs)),
                "first_prediction_s": [r["timestamps"][0] if r["timestamps"] else None
                                       for r in raw[p][d]],
                "num_predictions": [r["num_predictions"] for r in raw[p][d]],
                "killed_at_budget": sum(any("killed" in e for e in r["errors"])
                                        for r in raw[p][d]),
                "failures": [e for r in raw[p][d] for e in r["errors"]
                             if "ignored" not in e and "killed" not in e
                             and "without end.txt" not in e]}
    seed_means = [np.mean([raw[p][d][s]["score"] for d in dirs]) for s in range(c.num_seeds)]
    summary["participants"][p] = {"datasets": per, "mean_alc": float(np.mean(seed_means)),
                                  "mean_alc_std": float(np.std(seed_means))}
  table, ranks = scoring.leaderboard(
      {p: {d: v["alc_mean"] for d, v in summary["participants"][p]["datasets"].items()}
       for p in participants})
  summary["average_rank"] = ranks
  lines = ["| participant | " + " | ".join(dirs) + " | mean ALC | avg rank |",
           "|---" * (len(dirs) + 3) + "|"]
  for p in participants:
    s = summary["participants"][p]
    cells = [f"{s['datasets'][d]['alc_mean']:.3f} ± {s['datasets'][d]['alc_std']:.3f}"
             for d in dirs]
    lines.append(f"| {p} | " + " | ".join(cells) +
                 f" | {s['mean_alc']:.3f} ± {s['mean_alc_std']:.3f} | {ranks[p]:.2f} |")
  summary["table_md"] = "\n".join(lines)
  with open(os.path.join(workdir, "summary.json"), "w") as fh:
    json.dump(summary, fh, indent=1)
  with open(os.path.join(workdir, "leaderboard.md"), "w") as fh:
    fh.write(summary["table_md"] + "\n\nPer-dataset ranks:\n\n" + table + "\n")
  log(summary["table_md"])
  return summary


def main(argv):
  del argv
  c = _CONFIG.value if _CONFIG.value is not None else config_lib.get_config("demo")
  run_demo(c, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
