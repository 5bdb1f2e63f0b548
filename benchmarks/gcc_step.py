"""GCC step cost: the full GCC training step (teacher G/D step + student D step + student G
step with online KD + architecture step) vs a plain Pix2Pix step of the teacher alone, on the
same batch; prints a table and writes JSON.

  python benchmarks/gcc_step.py                       # CPU-sized: 64x64, teacher ngf 16
  python benchmarks/gcc_step.py --size 256 --batch 1 --batch 16 --teacher_ngf 64 \
      --student_ngf 32 --ndf 128 --num_downs 8        # the paper's Pix2Pix setting (GPU)

The student is the unpruned prototype (ngf --student_ngf); the GCC step uses 2 x batch pairs
(the second half is the architecture batch); the teacher step uses the same first half.
"""
from __future__ import annotations

import argparse
import json
import time

import jax

from jaxvision.core.method import DataInfo, RunContext, Stage
from jaxvision.methods.gcc import method as gcc_method


def make(args, full: bool, batch: int):
  import importlib.util
  spec = importlib.util.spec_from_file_location("gcc_cfg", "configs/gcc.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config("pix2pix_cityscapes,demo")
  n = args.num_downs
  c.models = mod._unet_roles(args.teacher_ngf, args.student_ngf, args.ndf, num_downs=n)
  if not full:  # teacher alone: the generator/discriminator roles are the teacher's models
    c.models.generator.kwargs.ngf = args.teacher_ngf
    c.models.discriminator.kwargs.gates = False
  c.gcc.selective_d = full
  c.gcc.online_kd = full
  c.gcc.macs_input_shape = (args.size, args.size, 3)
  c.batch_size = 2 * batch  # the GCC stage updates on the first half (teacher row: same)
  info = DataInfo("bench", 1000, 10, features={"image": ((args.size, args.size, 3), "float32"),
                                               "target": ((args.size, args.size, 3), "float32")})
  ctx = RunContext(config=c, data=info, mesh=None, workdir="", steps_per_epoch=100)
  state = gcc_method.init(ctx, jax.random.key(0), {})
  step = jax.jit(gcc_method.train_step(ctx, {}, Stage("gcc", steps=1, kind="finetune")))
  k = jax.random.split(jax.random.key(1), 2)
  b = {k_: jax.random.uniform(kk, (c.batch_size, args.size, args.size, 3), minval=-1, maxval=1)
       for k_, kk in zip(("image", "target"), k)}
  return state, step, b


def time_step(state, step, batch, iters):
  state, m = step(state, batch, jax.random.key(0))          # compile
  jax.block_until_ready(m["loss"])
  t = time.perf_counter()
  for i in range(iters):
    state, m = step(state, batch, jax.random.key(i))
  jax.block_until_ready(m["loss"])
  return (time.perf_counter() - t) / iters


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--size", type=int, default=64)
  p.add_argument("--batch", type=int, action="append")
  p.add_argument("--teacher_ngf", type=int, default=16)
  p.add_argument("--student_ngf", type=int, default=8)
  p.add_argument("--ndf", type=int, default=16)
  p.add_argument("--num_downs", type=int, default=6)
  p.add_argument("--iters", type=int, default=10)
  p.add_argument("--json", default="gcc_step.json")
  a = p.parse_args()
  rows = []
  for batch in a.batch or [4]:
    t_teacher = time_step(*make(a, False, batch), a.iters)
    t_gcc = time_step(*make(a, True, batch), a.iters)
    rows.append(dict(size=a.size, batch=batch, teacher_step_s=t_teacher, gcc_step_s=t_gcc,
                     ratio=t_gcc / t_teacher, gcc_images_per_s=batch / t_gcc,
                     teacher_images_per_s=batch / t_teacher, device=str(jax.devices()[0])))
  print(f"{'size':>5} {'batch':>5} {'teacher ms':>11} {'gcc ms':>9} {'ratio':>6} {'gcc img/s':>10}")
  for r in rows:
    print(f"{r['size']:>5} {r['batch']:>5} {1e3 * r['teacher_step_s']:>11.1f} "
          f"{1e3 * r['gcc_step_s']:>9.1f} {r['ratio']:>6.2f} {r['gcc_images_per_s']:>10.1f}")
  with open(a.json, "w") as f:
    json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
