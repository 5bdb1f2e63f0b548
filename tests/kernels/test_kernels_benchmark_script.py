"""benchmarks/kernels.py runs on CPU with --small and writes its JSON (no timing checks)."""
import importlib.util
import json
import math
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_benchmark_small_writes_json(tmp_path):
  spec = importlib.util.spec_from_file_location("bench_kernels", ROOT / "benchmarks/kernels.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  out = tmp_path / "k.json"
  mod.main(["--small", "--iters", "1", "--filter", "(3, 3, 8, 16)", "--out", str(out)])
  data = json.loads(out.read_text())
  assert {r["impl"] for r in data["rows"]} == {"xla", "pallas"}
  assert all(r["error"] is None and math.isfinite(r["gb_s"]) for r in data["rows"])
  assert any(r["case"].startswith("masked_weight") for r in data["rows"])
