"""Implementation choice shared by every op in `jaxvision.kernels`.

`impl` values accepted by the public ops:
  "auto"       the op's `PREFERRED[backend]` order (config.py), falling back to "xla"
               with a warning when a listed Pallas kernel cannot handle the input;
  "xla"        the plain-jnp reference (compiled by XLA), works everywhere;
  "pallas"     the Pallas kernel for this backend: Triton on GPU, Mosaic on TPU,
               the GPU kernel in interpret mode on CPU (slow; for tests);
  "pallas_gpu" / "pallas_tpu"  one kernel family explicitly (interpret mode on CPU).
An explicit choice that cannot run raises ValueError with the reason.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import jax

IMPLS = ("auto", "xla", "pallas", "pallas_gpu", "pallas_tpu")


def backend() -> str:
  """'cpu', 'gpu' or 'tpu' for the default JAX backend."""
  b = jax.default_backend()
  return "gpu" if b in ("gpu", "cuda", "rocm") else b


def interpret() -> bool:
  """Pallas runs only in interpret mode on CPU."""
  return backend() == "cpu"


def next_pow2(n: int) -> int:
  return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def _family_reason(name: str, be: str) -> str | None:
  if name == "pallas_gpu" and be not in ("gpu", "cpu"):
    return f"the Triton kernel needs a GPU (or CPU interpret mode); backend is {be!r}"
  if name == "pallas_tpu" and be not in ("tpu", "cpu"):
    return f"the Mosaic TPU kernel needs a TPU (or CPU interpret mode); backend is {be!r}"
  return None


def choose(op: str, impl: str, preferred: Mapping[str, tuple[str, ...]],
           checks: Mapping[str, Callable[[], str | None]]) -> str:
  """Returns 'xla', 'pallas_gpu' or 'pallas_tpu'.

  `checks[name]()` returns None when kernel `name` supports the input, else the reason.
  """
  if impl not in IMPLS:
    raise ValueError(f"{op}: impl={impl!r} is not one of {IMPLS}.")
  be = backend()
  if impl == "xla":
    return "xla"
  if impl == "pallas":
    impl = "pallas_tpu" if be == "tpu" else "pallas_gpu"
  if impl != "auto":
    reason = _family_reason(impl, be) or _check(checks, impl)
    if reason:
      raise ValueError(f"{op}: impl={impl!r} cannot run here: {reason}. "
                       "Use impl='xla' (the reference) or impl='auto'.")
    return impl
  for name in preferred.get(be, ("xla",)):
    if name == "xla":
      return "xla"
    reason = _family_reason(name, be) or _check(checks, name)
    if reason is None:
      return name
    warnings.warn(f"{op}: preferred kernel {name!r} skipped ({reason}); falling back.",
                  stacklevel=3)
  return "xla"


def _check(checks, name):
  if name not in checks:
    return f"no {name} implementation of this op"
  return checks[name]()


def triton_params(num_warps: int, num_stages: int):
  """Triton compiler params (selects the Triton lowering rather than Mosaic GPU)."""
  from jax.experimental.pallas import triton as plt  # noqa: PLC0415
  return plt.CompilerParams(num_warps=num_warps, num_stages=num_stages)
