"""DCL train step vs the CE-only step on the same backbone and views (ratio), and img/s.

    python benchmarks/dcl_step.py                      # CPU: the :demo net, tiny B0 at 72 px
    python benchmarks/dcl_step.py --backbone tf_efficientnet_b4 --size 299 --batch 32 \\
        --width 1.0 --depth 1.0 --dtype bfloat16 --queue 32768 [--json out.json]   # GPU

Both steps include the on-device view generation; the DCL step adds the momentum update, the
key-encoder forward, the memory update and the two contrastive losses. Prints a table and
writes JSON (never asserted in tests).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvision.core import roles
from jaxvision.methods.dcl import queues, step as S
from jaxvision.methods.dcl.objective import DCLModel, ObjectiveConfig
from jaxvision.methods.dcl.views import ViewConfig


def _state(model_q, model_k, tx, qcfg, with_key: bool):
  qs = roles.model_state(model_q)
  st = {"step": jnp.zeros((), jnp.int32), "models": {S.QUERY: qs},
        "opt": {S.QUERY: tx.init(qs["params"])}, "extras": {}}
  if with_key:
    st["models"][S.KEY] = roles.model_state(model_k)
    st["extras"]["memory"] = queues.init_memory(jax.random.key(1), qcfg)
  return st


def time_step(fn, state, batch, iters: int) -> float:
  state, m = fn(state, batch, jax.random.key(0))  # compile
  jax.block_until_ready(m["loss"])
  t0 = time.perf_counter()
  for i in range(iters):
    state, m = fn(state, batch, jax.random.key(i + 1))
  jax.block_until_ready(m["loss"])
  return (time.perf_counter() - t0) / iters


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--backbone", default="efficientnet_b0")
  p.add_argument("--size", type=int, default=72)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--width", type=float, default=0.25)
  p.add_argument("--depth", type=float, default=0.25)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--queue", type=int, default=1024)
  p.add_argument("--iters", type=int, default=5)
  p.add_argument("--json", default="")
  a = p.parse_args(argv)
  kw = dict(backbone=a.backbone, width_multiplier=a.width, depth_multiplier=a.depth,
            dtype=a.dtype)
  mq = DCLModel(2, rngs=nnx.Rngs(0), **kw)
  mk = DCLModel(2, rngs=nnx.Rngs(0), **kw)
  gq, gk = roles.split(mq)[0], roles.split(mk)[0]
  x = jax.ShapeDtypeStruct((1, a.size, a.size, 3), jnp.float32)
  dim = jax.eval_shape(lambda: mq(jnp.zeros(x.shape), train=False)["embedding"]).shape[-1]
  cfg = S.DCLConfig(objective=ObjectiveConfig(ce_only_epochs=0),
                    queue=queues.QueueConfig(size=a.queue, slack=8, dim=dim, hard=4),
                    views=ViewConfig(size=a.size))
  tx = optax.adam(2e-4)
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.integers(0, 256, (a.batch, a.size, a.size, 3), np.uint8)),
           "mask": jnp.asarray((rng.uniform(size=(a.batch, a.size, a.size)) > 0.5)
                               .astype(np.float32)),
           "label": jnp.asarray(np.arange(a.batch) % 2, jnp.int32)}
  rows = {}
  for name, fn, with_key in (
      ("ce", S.make_ce_step(gq, tx, cfg), False),
      ("dcl", S.make_train_step(gq, gk, tx, cfg, steps_per_epoch=1000), True)):
    st = _state(mq, mk, tx, cfg.queue, with_key)
    sec = time_step(jax.jit(fn), st, batch, a.iters)
    rows[name] = {"step_s": sec, "img_per_s": a.batch / sec}
  ratio = rows["dcl"]["step_s"] / rows["ce"]["step_s"]
  dev = jax.devices()[0]
  out = {"device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}", "host": platform.node(),
         "args": vars(a), "embedding_dim": dim, **rows, "dcl_over_ce": ratio}
  print(f"{'step':6s} {'s/step':>10s} {'img/s':>10s}   ({out['device']}, {a.backbone} "
        f"w{a.width} d{a.depth} {a.size}px batch {a.batch} {a.dtype})")
  for k, r in rows.items():
    print(f"{k:6s} {r['step_s']:10.4f} {r['img_per_s']:10.1f}")
  print(f"DCL / CE step time: {ratio:.2f}x")
  if a.json:
    with open(a.json, "w") as f:
      json.dump(out, f, indent=2)
  return out


if __name__ == "__main__":
  main()
