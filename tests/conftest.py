"""Test set-up: CPU only, 8 fake devices (set before jax starts), absl flags parsed."""
import os

os.environ["JAX_PLATFORMS"] = "cpu"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8").strip()
# Test programs are compile-bound: LLVM at -O0 (about a fifth off the suite's CPU time) plus
# the classic (non-MLIR) CPU fusion emitters (four slow test files: 391 s -> 244 s of CPU
# against -O0 alone with no expensive LLVM passes) and one LLVM module per program (the LFPNet
# test model's train step compiles in 10.5-10.9 s, was 14.2-14.4 s); what the tests assert
# does not depend on it.
# Set JAXVISION_TEST_XLA_OPT=1 to keep XLA's defaults.
FAST_COMPILE = ("--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
                "--xla_cpu_parallel_codegen_split_count=1")
if os.environ.get("JAXVISION_TEST_XLA_OPT", "0") != "1" and \
    "xla_backend_optimization_level" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " " + FAST_COMPILE
os.environ.setdefault("TQDM_DISABLE", "1")
# One persistent compilation cache for the session: tests that compile the same program
# (resume runs, shared configs) reuse it instead of compiling again.
# (one directory per xdist worker: no two processes write the same cache files).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), "jaxvision-test-xla-cache",
    os.environ.get("PYTEST_XDIST_WORKER", "main")))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAXVISION_CACHE_DIR", os.environ["JAX_COMPILATION_CACHE_DIR"])

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()


def _skip_tracer_origin_messages():
  """flax's Variable update calls getattr(value, "sharding", None); on a tracer jax builds (and
  the getattr discards) an AttributeError whose text walks every equation traced so far
  (find_progenitors). Each RNG-counter bump does it, so tracing a model's construction
  (nnx.eval_shape, a jitted init) is quadratic in its layer count: 17 % of the CPU time of
  tests/methods/clr_rnf/test_clr_rnf_surgery.py. Tests drop the message's "the error occurred
  while tracing ..." part; errors keep their type and first line."""
  from jax._src.interpreters import partial_eval as pe
  if hasattr(pe.DynamicJaxprTracer, "_origin_msg"):
    pe.DynamicJaxprTracer._origin_msg = lambda self: ""


_skip_tracer_origin_messages()

import pathlib  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # shared test helpers: `import tiny_models`


@pytest.fixture(scope="module")
def fast_compiles():
  """For modules of tiny programs whose cost is XLA CPU compile time: skip its optimisation
  passes (`pytestmark = pytest.mark.usefixtures("fast_compiles")`)."""
  import jax
  old = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture
def repo_root():
  return REPO


@pytest.fixture
def load_config():
  """load_config("classify", "smoke") -> configs/classify.py get_config("smoke")."""
  from jaxvision.config_lib import load_config_file
  return lambda name, arg=None: load_config_file(str(REPO / "configs" / f"{name}.py"), arg)


