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


def parse_sweep(text: str) -> dict:
  """'a.b=1,2;c=x,y' -> {'a.b': [1, 2], 'c': ['x', 'y']}; values are Python literals when
  they parse, else strings. Several keys varied together (rows, not a product):
  'a,b=(1,True),(2,False)' -> {('a', 'b'): [(1, True), (2, False)]}."""
  import ast
  out = {}
  for part in filter(None, (p.strip() for p in (text or "").split(";"))):
    key, sep, values = part.partition("=")
    if not sep or not values:
      raise ConfigError(f"--sweep part '{part}' must look like key=v1,v2 (several parts "
                        f"separated by ';')")
    keys = tuple(k.strip() for k in key.split(","))
    try:
      vals = list(ast.literal_eval(f"[{values}]"))
    except (ValueError, SyntaxError):
      vals = [v.strip() for v in values.split(",")]
    if len(keys) > 1:
      bad = [v for v in vals if not isinstance(v, tuple) or len(v) != len(keys)]
      if bad:
        raise ConfigError(f"--sweep part '{part}': each value must be a tuple of "
                          f"{len(keys)} (one per key), e.g. {key}=({', '.join(['v'] * len(keys))})")
      out[keys] = vals
    else:
      out[keys[0]] = vals
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


def _flat(combo: Mapping) -> dict:
  """{key or (keys...): value or (values...)} -> {key: value}."""
  out = {}
  for k, v in combo.items():
    out.update(zip(k, v) if isinstance(k, tuple) else [(k, v)])
  return out


def _name(combo: Mapping) -> str:
  if not combo:
    return "run"
  return ",".join(f"{k.split('.')[-1]}={v}" for k, v in _flat(combo).items()).replace("/", "_")


_SKIP = ("final", "config", "curve", "stages", "steps", "devices", "processes", "seeds")


def _scalars(summary: Mapping) -> dict[str, float]:
  """The run's `final` metrics plus every numeric field of its summary, nested ones as
  'a/b/c' (e.g. a method's per-variant results), for mean ± std over seeds."""
  out = {}
  for k, v in (summary.get("final") or {}).items():
    if isinstance(v, (int, float)) and not isinstance(v, bool):
      out[k] = float(v)

  def walk(prefix, node):
    for k, v in node.items():
      key = f"{prefix}{k}"
      if isinstance(v, Mapping):
        walk(key + "/", v)
      elif isinstance(v, (int, float)) and not isinstance(v, bool) and key not in out:
        out[key] = float(v)

  walk("", {k: v for k, v in summary.items() if k not in _SKIP})
  return out


def aggregate(runs: Sequence[Mapping[str, float]]) -> dict[str, dict]:
  """{metric: {"mean", "std", "n"}} over runs (metrics present in every run)."""
  keys = set.intersection(*(set(r) for r in runs)) if runs else set()
  out = {}
  for k in sorted(keys):
    vals = np.asarray([r[k] for r in runs], np.float64)
    out[k] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": int(vals.size)}
  return out


def paired(runs: Sequence[Mapping[str, float]], ref: Sequence[Mapping[str, float]]) -> dict:
  """{metric: {"mean", "std", "n"}} of the per-seed differences runs[k] - ref[k]."""
  diffs = [{m: r[m] - b[m] for m in r if m in b} for r, b in zip(runs, ref)]
  return aggregate(diffs)


def run(config, workdir: str, seeds: int = 1, sweep: Optional[Mapping[str, list]] = None,
        train_fn=None, reference: str = "") -> dict:
  """Trains every (variant, seed); returns and writes the aggregated summary.

  reference: a variant name (e.g. 'mode=ce'); each other variant then also gets
  `vs_reference`, the mean ± std over seeds of its paired difference to that variant.
  """
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
      for key, v in _flat(combo).items():
        _set(c, key, v)
      _set(c, "seed", base_seed + k)
      s = train_fn(c, os.path.join(workdir, name, f"seed{k}"))
      runs.append(_scalars(s))
    results[name] = {"variant": _flat(combo), "runs": runs, "stats": aggregate(runs)}
  if reference:
    if reference not in results:
      raise ConfigError(f"--sweep_reference='{reference}' is not a variant; variants: "
                        f"{', '.join(results)}")
    for name, r in results.items():
      if name != reference:
        r["vs_reference"] = paired(r["runs"], results[reference]["runs"])
  summary = {"seeds": [base_seed + k for k in range(seeds)],
             "sweep": {",".join(k) if isinstance(k, tuple) else k: v for k, v in sweep.items()},
             "variants": results,
             "reference": reference,
             "config": config.to_dict()}
  os.makedirs(workdir, exist_ok=True)
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
