"""Shared test helper: XLA_FLAGS for a Python subprocess (CLI runs, jax.distributed workers,
notebooks): the suite's compile flags (tests/conftest.py) with the subprocess's own fake-device
count (none: the real single CPU device)."""
import os


def xla_flags(devices: int | None = None) -> str:
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
  if devices:
    flags.append(f"--xla_force_host_platform_device_count={devices}")
  return " ".join(flags)
