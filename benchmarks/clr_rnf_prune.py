"""Time CLR-RNF pruning itself (scores + ranking, RNF selection, surgery) per model.

    python benchmarks/clr_rnf_prune.py [--models resnet50,vgg16,resnet56] [--repeats 3]
        [--json /tmp/clr_rnf_prune.json]

Weights are deterministic random (no pretrained weights offline), so widths differ from the
paper's; the work done (shapes, sorts, copies) is the same. Prints a table and writes JSON.
Target: ResNet-50 under 5 s on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
from flax import nnx

from jaxvision import flops
from jaxvision.methods.clr_rnf import archs, pruning, ranking, surgery
from jaxvision.methods.clr_rnf.pruning import PruneOptions, build_fn, default_lambda, make_selector

CASES = {"resnet50": (0.44, 1000, 224, {}), "vgg16": (0.86, 10, 32, {}),
         "resnet56": (0.56, 10, 32, {"shortcut": "A"}), "resnet110": (0.69, 10, 32,
                                                                    {"shortcut": "A"})}


def time_one(name: str, repeats: int) -> dict:
  pr, nc, size, kw = CASES[name]
  model = pruning.random_model(name, nc, seed=0, **kw)
  opts = PruneOptions(pr_target=pr, inherit_bn=True)
  mode = archs.DEFAULT_FLOPS_MODE.get(name, "measured")
  arch = archs.get_arch(name)
  best = None
  for _ in range(repeats):
    t0 = time.perf_counter()
    units = arch.units(model, mode, size)
    rk = ranking.cross_layer_ranking([u.weight for u in units], [u.num_filters for u in units],
                                     [u.f for u in units], default_lambda(name), pr)
    t1 = time.perf_counter()
    keep = {u.name: k for u, k in zip(units, rk.keep)}
    idx = {u.name: i for i, u in enumerate(units)}
    plan = arch.plan(model, keep, make_selector(opts), inherit_bn=True,
                     keep_fn=lambda n, u: rk.keep_of(n, idx[u]))
    t2 = time.perf_counter()
    narrow = surgery.narrow_model(model, plan, build_fn(name, nc, **kw))
    jax.block_until_ready(jax.tree.leaves(nnx.state(narrow)))
    t3 = time.perf_counter()
    row = {"model": name, "pr_target": pr, "units": len(units),
           "rank_s": t1 - t0, "select_s": t2 - t1, "surgery_s": t3 - t2, "total_s": t3 - t0}
    if best is None or row["total_s"] < best["total_s"]:
      best = row
  before, after = flops.count(model), flops.count(narrow)
  best.update(params_before=before["params"], params_after=after["params"],
              flops_before=before["flops"], flops_after=after["flops"])
  return best


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--models", default="resnet50,vgg16,resnet56")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--json", default="/tmp/clr_rnf_prune.json")
  a = p.parse_args()
  rows = [time_one(m, a.repeats) for m in a.models.split(",")]
  hdr = f"{'model':<10} {'pr':>5} {'units':>5} {'rank s':>7} {'RNF s':>7} {'surgery s':>9} " \
        f"{'total s':>8} {'params M':>15} {'FLOPs M':>17}"
  print(hdr)
  print("-" * len(hdr))
  for r in rows:
    print(f"{r['model']:<10} {r['pr_target']:>5.2f} {r['units']:>5} {r['rank_s']:>7.2f} "
          f"{r['select_s']:>7.2f} {r['surgery_s']:>9.2f} {r['total_s']:>8.2f} "
          f"{r['params_before'] / 1e6:>7.2f}->{r['params_after'] / 1e6:<7.2f} "
          f"{r['flops_before'] / 1e6:>8.1f}->{r['flops_after'] / 1e6:<8.1f}")
  out = {"rows": rows, "cpu_count": os.cpu_count(), "platform": platform.platform(),
         "jax": jax.__version__, "backend": jax.default_backend(),
         "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
         "date": time.strftime("%Y-%m-%d %H:%M")}
  with open(a.json, "w") as f:
    json.dump(out, f, indent=1)
  print(json.dumps({r["model"]: round(r["total_s"], 3) for r in rows}))
  print(f"wrote {a.json}")


if __name__ == "__main__":
  main()
