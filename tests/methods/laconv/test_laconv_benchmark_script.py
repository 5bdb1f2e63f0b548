"""benchmarks/laconv_block.py: its unfold reference equals dynamic_conv, and it runs on CPU with
--small and writes its JSON (no timing checks)."""
import importlib.util
import json
import math
import pathlib

import jax
import numpy as np

from jaxvision.kernels.dynamic_conv import dynamic_conv

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _module():
  spec = importlib.util.spec_from_file_location("bench_laconv", ROOT / "benchmarks/laconv_block.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_unfold_reference_equals_dynamic_conv_and_script_writes_json(tmp_path):
  mod = _module()
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (2, 7, 6, 8))
  w = jax.random.normal(kw, (2, 7, 6, 4 * 9))
  np.testing.assert_allclose(mod.unfold_aggregate(x, w, kernel_size=3, groups=4),
                             dynamic_conv(x, w, kernel_size=3, groups=4, impl="xla"),
                             rtol=1e-5, atol=1e-5)
  out = tmp_path / "lc.json"
  mod.main(["--small", "--out", str(out)])
  data = json.loads(out.read_text())
  assert len(data["block"]) == 2
  for row in data["block"]:
    assert not any(k.endswith("_error") for k in row), row
    assert all(math.isfinite(row[f"{i}_ms"]) for i in ("xla", "pallas", "unfold"))
  (m,) = data["model"]  # the tiny LaConvNet: forward and a full train step ran
  assert m["model"] == "laconvnet_tiny" and m["train_img_s"] > 0 and m["params"] > 0
