"""Images/s of the input pipeline: CIFAR training augmentation three ways, SR pairs, matting.

  python benchmarks/input_pipeline.py                # ~1-2 min on a 2-core CPU
  python benchmarks/input_pipeline.py --min_seconds=0.5   # quicker, noisier

CIFAR-shaped: a random uint8 [50000, 32, 32, 3] in-memory array, batch 256, pad-4 random crop,
left-right flip, CIFAR normalize (float32 NHWC out), done by
  * jaxvision's Pipeline (numpy ops on whole batches, grain threads), 1 and 2 threads;
  * jnp inside one jitted function with a PRNG key (the host only gathers uint8 rows and
    ships them; `jaxvision.data.pp.device_pad_crop_flip` runs on the device, here the CPU);
  * a torch DataLoader with the same transforms written in torch tensor ops per example
    (torchvision's RandomCrop(32, 4) / RandomHorizontalFlip / ToTensor / Normalize),
    0 workers (main process) and 2 workers.
Photos: photos_sr pairs (48x48 HR patches, LR by MATLAB bicubic x2 and x4) and photos_matting
crops (64x64 from procedural composites), 1 and 2 threads.

Prints a table and writes JSON (--out). Run the torch part first: forking DataLoader workers
after JAX has started its threads can deadlock.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time

import numpy as np

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


def _cpu_s() -> float:
  """CPU seconds (user + system) of this process and its live children (DataLoader workers)."""
  try:
    import psutil
  except ImportError:
    return time.process_time()
  me = psutil.Process()
  total = sum(me.cpu_times()[:2])
  for ch in me.children(recursive=True):
    try:
      total += sum(ch.cpu_times()[:2])
    except psutil.Error:
      pass
  return total


MIN_SECONDS = [2.0]  # each row runs at least this long (set by --min_seconds)


def _rate(it, n_batches: int, batch: int, warmup: int = 2, finish=None) -> tuple[float, float]:
  """(images per wall second, images per CPU second) over at least n_batches and at least
  MIN_SECONDS after `warmup` batches. On a shared machine the second is the steadier measure
  of the work per image (CPU time has ~10 ms ticks, hence the minimum duration).
  finish(last_batch) runs inside the timing (e.g. wait for asynchronously dispatched work)."""
  for _ in range(warmup):
    next(it)
  t, c = time.perf_counter(), _cpu_s()
  n = 0
  while n < n_batches or time.perf_counter() - t < MIN_SECONDS[0]:
    last = next(it)
    n += 1
  if finish is not None:
    finish(last)
  wall, cpu = time.perf_counter() - t, _cpu_s() - c
  return n * batch / wall, n * batch / max(cpu, 1e-9)


# ---------------------------------------------------------------- torch
def torch_rates(x: np.ndarray, batch: int, n_batches: int, workers: list[int]) -> dict:
  import torch
  from torch.utils.data import DataLoader, Dataset

  mean = torch.tensor(CIFAR_MEAN).view(3, 1, 1)
  std = torch.tensor(CIFAR_STD).view(3, 1, 1)

  class Cifar(Dataset):
    def __init__(self, arr):
      self.arr = torch.from_numpy(arr)

    def __len__(self):
      return len(self.arr)

    def __getitem__(self, i):
      img = self.arr[i].permute(2, 0, 1).float().div_(255)  # ToTensor
      img = torch.nn.functional.pad(img, (4, 4, 4, 4))  # RandomCrop(32, padding=4)
      y, x0 = torch.randint(0, 9, (2,)).tolist()
      img = img[:, y:y + 32, x0:x0 + 32]
      if torch.rand(()) < 0.5:  # RandomHorizontalFlip
        img = img.flip(-1)
      return (img - mean) / std  # Normalize

  out = {}
  torch.set_num_threads(1)
  for w in workers:
    dl = DataLoader(Cifar(x), batch_size=batch, shuffle=True, num_workers=w, drop_last=True,
                    persistent_workers=w > 0, prefetch_factor=4 if w else None,
                    worker_init_fn=lambda _: torch.set_num_threads(1))
    def forever(dl=dl):
      while True:
        yield from dl

    out[w] = _rate(forever(), n_batches, batch)
    del dl
  return out


# ----------------------------------------------------------------- jnp
def jnp_rate(x: np.ndarray, batch: int, n_batches: int):
  """_rate of (host gather + transfer + aug, aug only on a resident batch)."""
  import jax

  from jaxvision.data.pp import device_pad_crop_flip

  @jax.jit
  def augment(u8, key):  # u8: [B, 32, 32, 3] uint8 -> float32, normalised
    return device_pad_crop_flip(u8, key, pad=4, mean=CIFAR_MEAN, std=CIFAR_STD)

  rng = np.random.default_rng(0)
  key = jax.random.key(0)
  perm = rng.permutation(len(x))
  dev = jax.device_put(x[perm[:batch]])
  for s in range(2):  # compile augment and fold_in
    augment(jax.device_put(x[perm[:batch]]), jax.random.fold_in(key, s)).block_until_ready()

  def bounded(outputs, depth=2):  # at most `depth` batches in flight, like a training loop
    queue = []
    for y in outputs:
      queue.append(y)
      if len(queue) > depth:
        queue.pop(0).block_until_ready()
      yield y

  def resident():
    for s in itertools.count():
      yield augment(dev, jax.random.fold_in(key, s))

  def shipped():
    for s in itertools.count():
      idx = np.sort(perm[(s * batch) % len(x):][:batch])
      yield augment(jax.device_put(x[idx]), jax.random.fold_in(key, s))

  # Dispatch is asynchronous (the next gather overlaps the device work); waiting for the last
  # batch inside the timing counts all of the device work.
  wait = jax.block_until_ready
  return (_rate(bounded(shipped()), n_batches, batch, finish=wait),
          _rate(bounded(resident()), n_batches, batch, finish=wait))


# ------------------------------------------------------------ jaxvision
def pipeline_rate(dataset, batch: int, n_batches: int, threads: int, pp_train: str = ""):
  from jaxvision.data.base import Pipeline
  pipe = Pipeline(dataset, batch, seed=0, num_threads=threads, pp_train=pp_train)
  return _rate(pipe.train_iter(0, 100_000), n_batches, batch)


def main():
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--batches", type=int, default=40, help="least timed CIFAR batches per row")
  ap.add_argument("--min_seconds", type=float, default=2.0, help="least timed seconds per row")
  ap.add_argument("--batch", type=int, default=256)
  ap.add_argument("--photo_batches", type=int, default=10)
  ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                "input_pipeline_cpu.json"))
  args = ap.parse_args()
  B, N = args.batch, args.batches
  MIN_SECONDS[0] = args.min_seconds
  x = np.random.default_rng(0).integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8)
  y = np.random.default_rng(1).integers(0, 10, 50000).astype(np.int32)
  rows = []

  def add(name, threads, rate, note=""):
    rows.append({"pipeline": name, "threads": threads, "img_per_s": round(rate[0]),
                 "img_per_cpu_s": round(rate[1]), "note": note})
    print(f"  {name:<44} {threads!s:>7} {rate[0]:>10,.0f} {rate[1]:>10,.0f}  {note}", flush=True)

  print(f"{'CIFAR aug (pad-4 crop, flip, normalize), B=' + str(B):<46} {'threads':>7} "
        f"{'img/s':>10} {'img/CPU-s':>10}")
  tr = torch_rates(x, B, N, [0, 2])  # before JAX starts threads (fork safety)
  add("torch DataLoader (torch tensor ops/example)", "0 wkr", tr[0], "main process")
  add("torch DataLoader (torch tensor ops/example)", "2 wkr", tr[2], "2 worker processes")

  import ml_collections
  from jaxvision.core.method import DataInfo
  from jaxvision.core.registry import DATASETS
  from jaxvision.data import photos  # noqa: F401  (registers photos_sr / photos_matting)
  from jaxvision.data.base import ArrayRecords, Dataset
  cifar = Dataset(DataInfo("cifar_like", len(x), 0), ArrayRecords(image=x, label=y), [],
                  "pad_crop(4)|flip_lr|to_float|normalize('cifar10')")
  from jaxvision.data.base import Pipeline
  pipe = Pipeline(cifar, B, seed=0)
  add("jaxvision Pipeline.train_batch, no threads", 1,
      _rate(map(pipe.train_batch, itertools.count()), N, B), "gather + pp in the caller")
  pv = {t: pipeline_rate(cifar, B, N, t) for t in (1, 2)}
  add("jaxvision Pipeline (numpy batch ops)", 1, pv[1], "grain, 1 thread")
  add("jaxvision Pipeline (numpy batch ops)", 2, pv[2], "grain, 2 threads")
  e2e, dev = jnp_rate(x, B, N)
  add("jnp in jit with a PRNG key (uint8 in)", "XLA", e2e, "host gather + transfer + aug")
  add("jnp in jit with a PRNG key (aug only)", "XLA", dev, "batch already on device")
  best_torch = max(r[0] for r in tr.values())
  best_pipe = max(r[0] for r in pv.values())
  print(f"  wall img/s vs the best DataLoader: Pipeline {best_pipe / best_torch:.1f}x, "
        f"jnp end-to-end {e2e[0] / best_torch:.1f}x")

  print("Photos (Pipeline, default train pp)")
  for name, kw, b in (("photos_sr", {"scale": 2, "patch": 48}, 64),
                      ("photos_sr", {"scale": 4, "patch": 48}, 64),
                      ("photos_matting", {"image_size": 64}, 32)):
    ds = DATASETS.get(name)(ml_collections.ConfigDict({"dataset": {"name": name, **kw}}))
    for t in (1, 2):
      r = pipeline_rate(ds, b, args.photo_batches, t)
      label = f"{name} {kw}".replace("'", "")
      add(label, t, r, f"B={b}; " + ("48x48 HR + LR pairs" if name == "photos_sr" else
                                     "64x64 image/alpha/fg/bg/trimap"))

  meta = {"host": platform.node(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
          "batch": B, "min_batches": N, "min_seconds": args.min_seconds,
          "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump({"meta": meta, "rows": rows}, f, indent=2)
  print(f"load average (1 min) {meta['load_avg_1m']:.1f} on {meta['cpus']} CPUs; wrote {args.out}")


if __name__ == "__main__":
  main()
