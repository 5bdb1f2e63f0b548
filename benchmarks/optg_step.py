"""Times dense vs OptG (and GMP / RigL) train steps on the current device; prints a table + JSON.

    python benchmarks/optg_step.py [--model=resnet56] [--batch=256] [--dtype=bfloat16]
        [--steps=50] [--methods=dense,optg,gmp,rigl] [--json=optg_step.json]

Synthetic CIFAR-shaped data (or 224x224 for ImageNet models). "dense" is the
reference classify step; the others run `jaxvision.methods.optg`'s step at 90%
sparsity. The per-epoch OptG mask refresh (global top-k over all scores) is
timed separately ("refresh_ms": a step at an update boundary minus a plain one).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np


def _ctx(model, batch, dtype, width_multiplier):
  from jaxvision import models
  from jaxvision.config_lib import load_config_file
  from jaxvision.core.method import DataInfo, RunContext
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  c = load_config_file(os.path.join(repo, "configs", "optg.py"), "resnet56_90")
  c.models.student.name = model
  c.models.student.kwargs = {"width_multiplier": width_multiplier} if width_multiplier != 1.0 else {}
  c.dtype = dtype
  c.batch_size = batch
  c.num_epochs = None
  c.steps = 1000
  c.optims.student.warmup_epochs = 0.0
  shape = models.input_shape(model)
  ncls = 1000 if shape[0] >= 128 else 10
  info = DataInfo("synthetic", batch * 100, batch, num_classes=ncls,
                  features={"image": (tuple(shape), "float32"), "label": ((), "int32")})
  return RunContext(config=c, data=info, mesh=None, workdir="", steps_per_epoch=100)


def _time(fn, state, batch, steps):
  rng = jax.random.key(0)
  state, m = fn(state, batch, rng)  # compile
  jax.block_until_ready(m["loss"])
  t0 = time.perf_counter()
  for _ in range(steps):
    state, m = fn(state, batch, rng)
  jax.block_until_ready(m["loss"])
  return (time.perf_counter() - t0) / steps, state


def main(argv=None):
  ap = argparse.ArgumentParser()
  ap.add_argument("--model", default="resnet56")
  ap.add_argument("--batch", type=int, default=256)
  ap.add_argument("--dtype", default="bfloat16" if jax.default_backend() != "cpu" else "float32")
  ap.add_argument("--width_multiplier", type=float, default=1.0)
  ap.add_argument("--steps", type=int, default=50)
  ap.add_argument("--methods", default="dense,optg,gmp,rigl")
  ap.add_argument("--json", default="optg_step.json")
  args = ap.parse_args(argv)
  import jaxvision.methods.optg  # noqa: F401
  from jaxvision.core.method import Stage
  from jaxvision.methods.classify import method as classify_method
  from jaxvision.methods.optg import method as optg_method

  ctx = _ctx(args.model, args.batch, args.dtype, args.width_multiplier)
  h, w, ch = ctx.data.image_shape
  r = np.random.default_rng(0)
  batch = {"image": jnp.asarray(r.normal(size=(args.batch, h, w, ch)), jnp.float32),
           "label": jnp.asarray(r.integers(0, ctx.data.num_classes, args.batch), jnp.int32)}
  rows = []
  for meth in args.methods.split(","):
    ctx.config.optg.method = "dense" if meth == "dense" else meth
    if meth == "dense":
      init = lambda k: classify_method.init(ctx, k, {})
      step = classify_method.train_step(ctx, {}, Stage("train", 1000))
    else:
      init = lambda k: optg_method.init(ctx, k, {})
      step = optg_method.train_step(ctx, {}, Stage("train", 1000))
    state = jax.jit(init)(jax.random.key(0))
    fn = jax.jit(step, donate_argnums=(0,))
    # Start just after a refresh so the timed steps are plain ones.
    state["step"] = jnp.asarray(1, jnp.int32)
    sec, state = _time(fn, state, batch, args.steps)
    row = {"method": meth, "step_ms": sec * 1e3, "img_per_s": args.batch / sec}
    if meth in ("optg", "gmp"):
      state["step"] = jnp.asarray(100, jnp.int32)  # an update boundary (interval 100)
      t0 = time.perf_counter()
      state, m = fn(state, batch, jax.random.key(0))
      jax.block_until_ready(m["loss"])
      row["refresh_ms"] = (time.perf_counter() - t0) * 1e3 - row["step_ms"]
    rows.append(row)
  base = rows[0]["step_ms"] if rows and rows[0]["method"] == "dense" else None
  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), model {args.model}, "
        f"batch {args.batch}, dtype {args.dtype}")
  print(f"{'method':8s} {'step ms':>9s} {'img/s':>10s} {'vs dense':>9s} {'refresh ms':>11s}")
  for rw in rows:
    rel = f"{rw['step_ms'] / base:.2f}x" if base else "-"
    ref = f"{rw['refresh_ms']:.1f}" if "refresh_ms" in rw else "-"
    print(f"{rw['method']:8s} {rw['step_ms']:9.2f} {rw['img_per_s']:10.0f} {rel:>9s} {ref:>11s}")
  out = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
         "jax": jax.__version__, "model": args.model, "batch": args.batch, "dtype": args.dtype,
         "rows": rows}
  with open(args.json, "w") as f:
    json.dump(out, f, indent=1)
  print(f"wrote {args.json}")
  return out


if __name__ == "__main__":
  main()
