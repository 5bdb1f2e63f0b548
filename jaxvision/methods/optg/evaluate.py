"""Evaluate an exported sparse model alone (no training state needed).

    python -m jaxvision.methods.optg.evaluate --export=WORKDIR/export [--data_dir=...]
        [--batch_size=256] [--dataset=digits]

Prints and returns {"top1", "top5", "loss", "sparsity", "num_examples"}; the
dataset defaults to the one the export was trained on, with the run's dataset options
(meta.json), so the export is scored on the eval set the run used.
"""
from __future__ import annotations

import argparse
import json
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.sparsity import export as export_lib


def evaluate(export_path: str, dataset: Optional[str] = None, data_dir: str = "",
             batch_size: int = 256, max_batches: Optional[int] = None) -> dict:
  """Top-1/top-5 accuracy of an export on the eval split of its dataset."""
  import ml_collections
  from jaxvision import data as data_lib
  from jaxvision.config_lib import base_config
  from jaxvision.evaluators import classification as cls_eval
  if int(batch_size) < 1:
    raise ValueError(f"--batch_size={batch_size} must be >= 1")
  model, meta = export_lib.load(export_path)
  cfg = base_config()
  saved = meta.get("dataset_config")
  if saved and dataset in (None, saved.get("name")):
    # the run's own dataset options (synthetic sizes and seed, splits, ...): the same eval set
    cfg.dataset = ml_collections.ConfigDict(saved)
  else:
    cfg.dataset.name = dataset or meta.get("dataset") or "digits"
  if data_dir or not saved:
    cfg.dataset.data_dir = data_dir
  cfg.dataset.augment = False
  ds = data_lib.build(cfg)
  pipe = data_lib.Pipeline(ds, batch_size)

  @jax.jit
  def per_example(images, labels):
    return cls_eval.per_example(model(images, train=False), labels, (1, 5))

  sums, count = {}, 0.0
  for i, batch in enumerate(pipe.eval_iter(batch_size)):
    if max_batches is not None and i >= max_batches:
      break
    out = jax.device_get(per_example(jnp.asarray(batch["image"]), jnp.asarray(batch["label"])))
    m = batch["_valid"]
    for k, v in out.items():
      sums[k] = sums.get(k, 0.0) + float(np.sum(np.asarray(v) * m))
    count += float(m.sum())
  res = {k: v / count for k, v in sums.items()}
  res["sparsity"] = export_lib.sparsity_of(model, meta.get("masked", []))
  res["num_examples"] = int(count)
  return res


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--export", required=True, help="export directory (meta.json + params.npz)")
  ap.add_argument("--dataset", default=None)
  ap.add_argument("--data_dir", default="")
  ap.add_argument("--batch_size", type=int, default=256)
  args = ap.parse_args(argv)
  res = evaluate(args.export, args.dataset, args.data_dir, args.batch_size)
  print(json.dumps(res, indent=1))
  return res


if __name__ == "__main__":
  main()
