"""IntraQ throughput on the current device: synthesis (images x iterations / s) and the cost
of a fake-quantized (W/A) fine-tuning step against the same step in full precision.

  python benchmarks/intraq_synthesis.py --model=resnet20 --batch=256 --image=32 \
      --json=/tmp/intraq_bench.json
  python benchmarks/intraq_synthesis.py --model=resnet18 --batch=64 --image=224 --classes=1000
"""
from __future__ import annotations

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision import models, quant
from jaxvision.core import roles
from jaxvision.methods.intraq import kd_ce_loss, synthesis


def _time(fn, state, steps, warmup=2):
  for _ in range(warmup):
    state = fn(state)
  jax.block_until_ready(state)
  t = time.perf_counter()
  for _ in range(steps):
    state = fn(state)
  jax.block_until_ready(state)
  return (time.perf_counter() - t) / steps


def main():
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--model", default="resnet20")
  p.add_argument("--classes", type=int, default=10)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--image", type=int, default=32)
  p.add_argument("--bits", type=int, default=4)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--width_multiplier", type=float, default=1.0)
  p.add_argument("--json", default="")
  a = p.parse_args()
  kw = {"width_multiplier": a.width_multiplier} if a.width_multiplier != 1.0 else {}
  if a.model.startswith("resnet") and a.image == 32:
    kw["shortcut"] = "B"
  teacher = models.build(a.model, a.classes, rngs=nnx.Rngs(0), **kw)
  order = quant.call_order(teacher, jnp.zeros((1, a.image, a.image, 3)))
  gdef, params, rest = roles.split(teacher)
  ts = {"params": params, "rest": rest}
  n = a.batch

  # --- synthesis: one IntraQ iteration (LOR + SIL + MDC) per call
  cfg = synthesis.SynthConfig(iters=10 ** 6, feature_layer=order[-1], eps_soft=0.9,
                              lambda_l=0.05, lambda_u=0.8)
  feat_dim = [m.in_features for pth, m in quant.find_modules(teacher, (nnx.Linear, nnx.Conv))
              if "/".join(map(str, pth)) == order[-1]][0]
  ex = synthesis.init_extras(jax.random.key(0), 1, n, (a.image, a.image, 3), a.classes,
                             feat_dim, cfg)
  sstate = {"step": jnp.zeros((), jnp.int32), "models": {"teacher": ts},
            "opt": {"images": synthesis.adam(cfg).init(ex["images"][0])}, "extras": ex}
  sstep = jax.jit(synthesis.make_synthesis_step(cfg, gdef, 0))
  t_synth = _time(lambda s: sstep(s, None, jax.random.fold_in(jax.random.key(1), s["step"]))[0],
                  sstate, a.steps)

  # --- fine-tuning step: FP student vs W/A fake-quantized student, same KD + CE loss
  x = jax.random.normal(jax.random.key(2), (n, a.image, a.image, 3))
  t_logits = teacher(x, train=False)
  batch = {"image": x, "label": jnp.argmax(t_logits, -1), "teacher_logits": t_logits}
  loss_fn = functools.partial(kd_ce_loss, alpha=20.0, temperature=20.0, ce_weight=1.0)
  tx = optax.sgd(1e-4, momentum=0.9, nesterov=True)
  results = {}
  for name in ("fp32", f"w{a.bits}a{a.bits}"):
    student = nnx.clone(teacher)
    if name != "fp32":
      quant.quantize_model(student, quant.uniform_rules(a.bits), sample_input=x[:1])
      quant.calibrate(student, [x])
    g, sp, sr = roles.split(student)
    st = {"step": jnp.zeros((), jnp.int32), "models": {"student": {"params": sp, "rest": sr}},
          "opt": {"student": tx.init(sp)}, "extras": {}}
    step = jax.jit(roles.make_train_step(g, tx, loss_fn))
    results[name] = _time(lambda s: step(s, batch, jax.random.key(0))[0], st, a.steps)

  qname = f"w{a.bits}a{a.bits}"
  out = {
      "device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
      "jax": jax.__version__, "model": a.model, "batch": n, "image": a.image,
      "synthesis_s_per_iter": t_synth, "synthesis_images_iters_per_s": n / t_synth,
      "finetune_fp32_s_per_step": results["fp32"], f"finetune_{qname}_s_per_step": results[qname],
      "fake_quant_overhead": results[qname] / results["fp32"],
  }
  print(f"{'measure':40s} value")
  print(f"{'device':40s} {out['device']} ({out['backend']})")
  print(f"{'synthesis iteration (s)':40s} {t_synth:.4f}")
  print(f"{'synthesis images x iterations / s':40s} {n / t_synth:.1f}")
  print(f"{'fine-tune step fp32 (s)':40s} {results['fp32']:.4f}")
  print(f"{'fine-tune step ' + qname + ' fake-quant (s)':40s} {results[qname]:.4f}")
  print(f"{'fake-quant / fp32':40s} {out['fake_quant_overhead']:.2f}x")
  if a.json:
    with open(a.json, "w") as f:
      json.dump(out, f, indent=1)
  return out


if __name__ == "__main__":
  main()
