"""Times importing a ResNet-50 PyTorch checkpoint into jaxvision (target: < 10 s on 2 CPU cores).

    python benchmarks/torch_import.py [--out=torch_import.json]

Builds a torchvision-layout ResNet-50 state_dict with random values, saves it, then times
(1) building the NNX model, (2) torch.load + conversion, and prints a table plus JSON.
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np
from flax import nnx

from jaxvision import models


def _random_state_dict(model):
  """A torchvision-named state_dict with the shapes of `model` (random values)."""
  import torch
  from jaxvision.models import torch_import
  rule = torch_import.naming_rules(model)["torchvision"]
  rng = np.random.default_rng(0)
  sd = {}
  for key, _, _, shape in torch_import._expected(model, rule):  # pylint: disable=protected-access
    sd[key] = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
    if key.endswith("running_var"):
      sd[key] = sd[key].abs() + 0.5
      sd[key[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(0)
  return sd


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--out", default="torch_import.json")
  a = p.parse_args()
  import torch
  t0 = time.perf_counter()
  model = models.build("resnet50", 1000, rngs=nnx.Rngs(0))
  t_build = time.perf_counter() - t0
  with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "resnet50.pth")
    torch.save(_random_state_dict(model), path)
    t0 = time.perf_counter()
    models.load_torch_checkpoint(model, path, naming="auto", strict=True)
    jax_leaf = nnx.state(model, nnx.Param)
    import jax
    jax.block_until_ready(jax.tree.leaves(jax_leaf))
    t_load = time.perf_counter() - t0
  rows = {"build_resnet50_s": t_build, "load_torch_checkpoint_s": t_load,
          "cpu_count": os.cpu_count(), "torch": torch.__version__}
  print(f"{'step':<28}{'seconds':>10}")
  print(f"{'build resnet50 (nnx)':<28}{t_build:>10.2f}")
  print(f"{'load_torch_checkpoint':<28}{t_load:>10.2f}")
  with open(a.out, "w") as f:
    json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
