"""Several seeds and variants in one command, reported as mean ± std.

    python -m jaxvision.main --config=configs/optg.py:demo --workdir=/tmp/optg \\
        --seeds=3 --sweep='optg.method=optg,gmp,dense'

Each (variant, seed) trains in its own sub-workdir `<workdir>/<variant>/seed<k>` through
`loop.train` (so each resumes on its own, and a finished one is not rerun); seed k uses
`config.seed + k`. `<workdir>/summary.json` gets every run's final metrics and, per variant,
mean, std (ddof=0) and n of every scalar in the runs' `final` block and of the numeric
top-level fields of their summaries; the same table is printed.
"""
from __future__ import annotations

import itertools
import math
import os
from typing import Mapping, Optional, Sequence

import numpy as np

from jaxvision.core.config import ConfigError
from jaxvision.core import logging as log_lib


def parse_sweep(text: str) -> dict[str, list]:
  """'a.b=1,2;c=x,y' -> {'a.b': [1, 2], 'c': ['x', 'y']} (values parsed as Python literals
  when they are, else kept as strings)."""
  import ast
  out = {}
  for part in filter(None, (p.strip() for p in (text or "").split(";"))):
    key, sep, values = part.partition("=")
    if not sep or not values:
      raise ConfigError(f"--sweep part '{part}' must look like key=v1,v2 (several parts "
                        f"separated by ';')")
    vals = []
    for v in values.split(","):
      v = v.strip()
      try:
        vals.append(ast.literal_eval(v))
      except (ValueError, SyntaxError):
        vals.append(v)
    out[key.strip()] = vals
  return out


def _set(config, dotted: str, value):
  node = config
  *parents, leaf = dotted.split(".")
  try:
    for p in parents:
      node = node[p]
    if leaf not in node:
      raise KeyError(leaf)
  except KeyError:
    raise ConfigError(f"--sweep key '{dotted}' is not in the config") from None
  with config.unlocked() if hasattr(config, "unlocked") else _null():
    node[leaf] = value


class _null:
  def __enter__(self):
    return self

  def __exit__(self, *a):
    return False


def _name(combo: Mapping) -> str:
  if not combo:
    return "run"
  return ",".join(f"{k.split('.')[-1]}={v}" for k, v in combo.items()).replace("/", "_")


def _scalars(summary: Mapping) -> dict[str, float]:
  out = {}
  for k, v in (summary.get("final") or {}).items():
    if isinstance(v, (int, float)) and not isinstance(v, bool):
      out[k] = float(v)
  for k, v in summary.items():
    if k in ("final", "steps", "devices", "processes") or k in out:
      continue
    if isinstance(v, (int, float)) and not isinstance(v, bool):
      out[k] = float(v)
  return out


def aggregate(runs: Sequence[Mapping[str, float]]) -> dict[str, dict]:
  """{metric: {"mean", "std", "n"}} over runs (metrics present in every run)."""
  keys = set.intersection(*(set(r) for r in runs)) if runs else set()
  out = {}
  for k in sorted(keys):
    vals = np.asarray([r[k] for r in runs], np.float64)
    out[k] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": int(vals.size)}
  return out


def run(config, workdir: str, seeds: int = 1, sweep: Optional[Mapping[str, list]] = None,
        train_fn=None) -> dict:
  """Trains every (variant, seed); returns and writes the aggregated summary."""
  if train_fn is None:
    from jaxvision.core.loop import train as train_fn
  if seeds < 1:
    raise ConfigError(f"--seeds={seeds} must be >= 1")
  sweep = dict(sweep or {})
  combos = [dict(zip(sweep, vals)) for vals in itertools.product(*sweep.values())] or [{}]
  workdir = os.path.abspath(os.path.expanduser(workdir))
  base_seed = int(config.seed)
  results = {}
  for combo in combos:
    name = _name(combo)
    runs = []
    for k in range(seeds):
      c = config.copy_and_resolve_references()
      for key, v in combo.items():
        _set(c, key, v)
      _set(c, "seed", base_seed + k)
      s = train_fn(c, os.path.join(workdir, name, f"seed{k}"))
      runs.append(_scalars(s))
    results[name] = {"variant": combo, "runs": runs, "stats": aggregate(runs)}
  summary = {"seeds": [base_seed + k for k in range(seeds)], "sweep": sweep, "variants": results,
             "config": config.to_dict()}
  log_lib.write_json(os.path.join(workdir, "summary.json"), summary)
  print(format_table(results))
  return summary


def format_table(results: Mapping, metrics: Optional[Sequence[str]] = None) -> str:
  """Markdown table: one row per variant, mean ± std of each metric."""
  names = list(results)
  if not names:
    return ""
  common = set.intersection(*(set(r["stats"]) for r in results.values()))
  metrics = [m for m in (metrics or sorted(common)) if m in common and not m.endswith("time_s")]
  lines = ["| variant | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
  for n in names:
    st = results[n]["stats"]
    cells = []
    for m in metrics:
      mean, std = st[m]["mean"], st[m]["std"]
      cells.append(f"{mean:.4g} ± {std:.2g}" if math.isfinite(mean) else "nan")
    lines.append(f"| {n} (n={st[metrics[0]]['n'] if metrics else 0}) | " + " | ".join(cells) + " |")
  return "\n".join(lines)
