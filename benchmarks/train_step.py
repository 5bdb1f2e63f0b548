"""Images/s of the classify train step (the method-free baseline every method is compared with).

  python benchmarks/train_step.py --model=resnet56 --batch=256 --dtype=bfloat16 --steps=50
  python benchmarks/train_step.py --model=resnet20 --batch=64 --width=0.5 --steps=10   # CPU

Prints a table and writes JSON (--out). Synthetic data, 32x32x3 (224x224x3 for
ImageNet models), data-parallel over all local devices, donated state.
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--model", default="resnet56")
  ap.add_argument("--batch", type=int, default=256)
  ap.add_argument("--dtype", default="bfloat16")
  ap.add_argument("--width", type=float, default=1.0, help="width_multiplier")
  ap.add_argument("--steps", type=int, default=50)
  ap.add_argument("--warmup", type=int, default=5)
  ap.add_argument("--out", default="train_step_bench.json")
  args = ap.parse_args()

  from jaxvision import config_lib, models
  from jaxvision.core import sharding
  from jaxvision.core.loop import build_context
  from jaxvision.data import Dataset
  from jaxvision.core.method import DataInfo, Stage
  from jaxvision.methods.classify.method import CLASSIFY

  shape = models.input_shape(args.model)
  num_classes = 1000 if shape[0] >= 128 else 10
  c = config_lib.base_config()
  c.models.student.name, c.dtype, c.batch_size = args.model, args.dtype, args.batch
  c.models.student.kwargs = {"width_multiplier": args.width}
  c.steps = args.steps + args.warmup
  info = DataInfo("synthetic", args.batch * 100, 0, num_classes=num_classes,
                  features={"image": (tuple(shape), "float32"), "label": ((), "int32")})
  ctx, _ = build_context(c, "/tmp/bench", dataset=Dataset(info, [], []))
  meta = {"stage": 0}
  abstract = jax.eval_shape(lambda r: CLASSIFY.init(ctx, r, meta), jax.random.key(0))
  shard = sharding.state_shardings(abstract, ctx.mesh)
  state = jax.jit(lambda r: CLASSIFY.init(ctx, r, meta), out_shardings=shard)(jax.random.key(0))
  step_fn = CLASSIFY.train_step(ctx, meta, Stage("train", c.steps))
  bsh = sharding.batch_sharding(ctx.mesh)
  fn = jax.jit(lambda s, b: step_fn(s, b, jax.random.key(0)), in_shardings=(shard, bsh),
               out_shardings=(shard, sharding.replicated(ctx.mesh)), donate_argnums=0)
  rng = np.random.default_rng(0)
  batch = jax.device_put({"image": rng.normal(size=(args.batch, *shape)).astype(np.float32),
                          "label": rng.integers(0, num_classes, args.batch).astype(np.int32)}, bsh)
  for _ in range(args.warmup):
    state, m = fn(state, batch)
  jax.block_until_ready(m)
  t0 = time.perf_counter()
  for _ in range(args.steps):
    state, m = fn(state, batch)
  jax.block_until_ready((state, m))
  dt = time.perf_counter() - t0
  ips = args.batch * args.steps / dt
  row = dict(model=args.model, batch=args.batch, dtype=args.dtype, width=args.width,
             devices=jax.device_count(), device=jax.devices()[0].device_kind,
             step_ms=1000 * dt / args.steps, images_per_s=ips, jax=jax.__version__)
  print(f"{'model':<12}{'batch':>7}{'dtype':>10}{'device':>22}{'step ms':>10}{'img/s':>12}")
  print(f"{args.model:<12}{args.batch:>7}{args.dtype:>10}{row['device'][:21]:>22}"
        f"{row['step_ms']:>10.2f}{ips:>12.1f}")
  with open(args.out, "w") as f:
    json.dump(row, f, indent=2)


if __name__ == "__main__":
  main()
