"""Times L1 vs DECLoss vs ESRGAN-GAN train steps of one SR model and batch; prints a table + JSON.

    python benchmarks/decloss_step.py [--variant=edsr_baseline] [--patch=192] [--batch=16]
        [--steps=20] [--dtype=bfloat16] [--extractor=random|vgg19] [--json=decloss_step.json]
    python benchmarks/decloss_step.py --demo     # the :demo model/batch (EDSR 4x32, patch 64)

Synthetic data; each variant is `jaxvision.methods.decloss`'s jitted step (`vgg19` uses the
VGG-19 architecture with random weights: the cost, not the values, is measured). The ratios
"vs l1" are the DECLoss / GAN overhead over the plain L1 step on the same model and batch.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np


def _ctx(args):
  from jaxvision.config_lib import load_config_file
  from jaxvision.core.method import DataInfo, RunContext
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  c = load_config_file(os.path.join(repo, "configs", "decloss.py"),
                       args.variant + (",demo" if args.demo else ""))
  c.dtype = args.dtype
  c.batch_size = args.batch
  patch = args.patch or c.dataset.patch
  c.models.discriminator.kwargs.input_size = patch
  if args.extractor == "random":
    c.decloss.extractor = "random"
    for role in ("extractor", "perceptual"):
      c.models[role].name = "random_conv_features"
      c.models[role].kwargs = {"width_multiplier": 1.0}
  else:  # cost only: the VGG-19 architecture with random weights (no weight file needed)
    from jaxvision.methods.decloss import method as dm
    c.decloss.extractor = "vgg19"
    dm.validate = lambda ctx: None  # skips the weight-file check; `prepare` is never called
  scale = int(c.decloss.scale)
  info = DataInfo("synthetic", args.batch * 100, args.batch, scale=scale,
                  features={"lr": ((patch // scale, patch // scale, 3), "float32"),
                            "hr": ((patch, patch, 3), "float32")})
  return RunContext(config=c, data=info, mesh=None, workdir="", steps_per_epoch=100), patch


def _time(fn, state, batch, steps):
  rng = jax.random.key(0)
  state, m = fn(state, batch, rng)  # compile
  jax.block_until_ready(m["loss"])
  t0 = time.perf_counter()
  for i in range(steps):
    state, m = fn(state, batch, jax.random.fold_in(rng, i))
  jax.block_until_ready(m["loss"])
  return (time.perf_counter() - t0) / steps, state


def main(argv=None):
  ap = argparse.ArgumentParser()
  ap.add_argument("--variant", default="edsr_baseline")
  ap.add_argument("--demo", action="store_true")
  ap.add_argument("--patch", type=int, default=0)
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--dtype", default="bfloat16" if jax.default_backend() != "cpu" else "float32")
  ap.add_argument("--extractor", default="random", choices=("random", "vgg19"))
  ap.add_argument("--steps", type=int, default=20)
  ap.add_argument("--variants", default="l1,decloss,gan")
  ap.add_argument("--json", default="decloss_step.json")
  args = ap.parse_args(argv)
  from jaxvision.core.method import Stage
  from jaxvision.methods.decloss import method as dm

  ctx, patch = _ctx(args)
  scale = int(ctx.config.decloss.scale)
  r = np.random.default_rng(0)
  hr = jnp.asarray(r.random((args.batch, patch, patch, 3)), jnp.float32)
  lr = jax.image.resize(hr, (args.batch, patch // scale, patch // scale, 3), "linear")
  batch = {"lr": lr, "hr": hr}
  state = jax.jit(lambda k: dm.init(ctx, k, {}))(jax.random.key(0))
  rows = []
  for v in args.variants.split(","):
    fn = jax.jit(dm.train_step(ctx, {}, Stage(f"finetune_{v}", 100, kind="finetune", variant=v)))
    sec, _ = _time(fn, state, batch, args.steps)
    rows.append({"variant": v, "step_ms": sec * 1e3, "img_per_s": args.batch / sec})
  base = next((rw["step_ms"] for rw in rows if rw["variant"] == "l1"), None)
  gen = ctx.config.models.generator
  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), generator "
        f"{gen.name} {dict(gen.kwargs)}, HR patch {patch}, batch {args.batch}, dtype "
        f"{args.dtype}, extractor {args.extractor}")
  print(f"{'variant':8s} {'step ms':>9s} {'img/s':>9s} {'vs l1':>7s}")
  for rw in rows:
    rw["vs_l1"] = rw["step_ms"] / base if base else None
    rel = f"{rw['vs_l1']:.2f}x" if base else "-"
    print(f"{rw['variant']:8s} {rw['step_ms']:9.2f} {rw['img_per_s']:9.1f} {rel:>7s}")
  out = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
         "jax": jax.__version__, "generator": gen.name, "patch": patch, "batch": args.batch,
         "dtype": args.dtype, "extractor": args.extractor, "rows": rows}
  with open(args.json, "w") as f:
    json.dump(out, f, indent=1)
  print(f"wrote {args.json}")
  return out


if __name__ == "__main__":
  main()
