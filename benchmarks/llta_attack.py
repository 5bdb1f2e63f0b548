"""Attack throughput: LLTA vs MI-FGSM on one surrogate, batched vs a batch-1 loop.

    python benchmarks/llta_attack.py                                   # CPU: tiny ResNet-20
    python benchmarks/llta_attack.py --model resnet50 --image 224 --batch 16 --width 1  # GPU

Prints a table (images/s after compilation, and the batched / batch-1-loop speed ratio) and
writes JSON with --out. The surrogate is random-init (speed does not depend on the weights);
LLTA uses the official hyper-parameters (T=10, E=5, S=5, N=5, n_s=20, n_q=10) unless
--llta_small is given.
"""
from __future__ import annotations

import argparse
import json
import time

import jax
from flax import nnx

from jaxvision import attacks
from jaxvision.models import build


def _time(fn, *args, repeats: int) -> float:
  jax.block_until_ready(fn(*args))            # compile + warm-up
  t = time.perf_counter()
  for _ in range(repeats):
    jax.block_until_ready(fn(*args))
  return (time.perf_counter() - t) / repeats


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--model", default="resnet20")
  p.add_argument("--width", type=float, default=0.25, help="width_multiplier")
  p.add_argument("--image", type=int, default=32)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--repeats", type=int, default=1)
  p.add_argument("--llta_small", action="store_true",
                 help="T=10, E=1, S=2, N=2, n_s=4, n_q=2 instead of the official sizes")
  p.add_argument("--skip_loop", action="store_true", help="skip the batch-1 loop rows")
  p.add_argument("--out", default=None, help="write the results as JSON here")
  a = p.parse_args(argv)

  model = build(a.model, 10, rngs=nnx.Rngs(0), width_multiplier=a.width)
  sur, var = attacks.from_nnx(model, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
  x = jax.random.uniform(jax.random.key(0), (a.batch, a.image, a.image, 3))
  y = jax.jit(lambda v, z: attacks.predict_labels(sur, v, z))(var, x)
  key = jax.random.key(1)
  small = dict(search_epochs=1, search_samples=2, num_tasks=2, support_size=4, query_size=2)
  cfgs = {"mifgsm": attacks.attack_config("mifgsm", eps=16 / 255, steps=10),
          "llta": attacks.attack_config("llta", eps=16 / 255, **(small if a.llta_small else {}))}
  rows = []
  for name, cfg in cfgs.items():
    fn = attacks.make_attack(cfg, sur)
    tb = _time(fn, var, x, y, key, repeats=a.repeats)
    row = {"attack": name, "batch": a.batch, "batched_img_s": a.batch / tb}
    if not a.skip_loop:
      keys = attacks.example_keys(key, a.batch)
      def loop(var, x, y, keys):
        return [fn(var, x[i:i + 1], y[i:i + 1], keys[i:i + 1]) for i in range(x.shape[0])]
      tl = _time(loop, var, x, y, keys, repeats=a.repeats)
      row.update(loop_img_s=a.batch / tl, batched_over_loop=tl / tb)
    rows.append(row)
  dev = jax.devices()[0]
  print(f"surrogate {a.model} width x{a.width} at {a.image}px on {dev.platform} "
        f"({dev.device_kind}); LLTA {'small' if a.llta_small else 'official'} sizes")
  print(f"{'attack':<8} {'batch':>5} {'batched img/s':>14} {'batch-1 loop img/s':>19} "
        f"{'ratio':>6}")
  for r in rows:
    loop_s = f"{r['loop_img_s']:19.2f}" if "loop_img_s" in r else f"{'-':>19}"
    ratio = f"{r['batched_over_loop']:6.2f}" if "batched_over_loop" in r else f"{'-':>6}"
    print(f"{r['attack']:<8} {r['batch']:>5} {r['batched_img_s']:14.2f} {loop_s} {ratio}")
  print(f"LLTA costs {rows[0]['batched_img_s'] / rows[1]['batched_img_s']:.0f}x MI-FGSM "
        "per image (batched).")
  if a.out:
    with open(a.out, "w") as f:
      json.dump({"args": vars(a), "device": str(dev.device_kind), "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
