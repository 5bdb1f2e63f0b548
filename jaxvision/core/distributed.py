"""Multi-host start-up behind one switch (`config.distributed` / `--distributed`).

On TPU pods and SLURM/Kubernetes GPU clusters `jax.distributed.initialize()`
finds its peers itself. Elsewhere (and in the CPU two-process test) set
JAXVISION_COORDINATOR=host:port, JAXVISION_NUM_PROCESSES and
JAXVISION_PROCESS_ID. On CPU the gloo collectives are selected.
"""
from __future__ import annotations

import os

import jax

_initialized = False


def initialize() -> None:
  global _initialized
  if _initialized:
    return
  kwargs = {}
  if "JAXVISION_COORDINATOR" in os.environ:
    kwargs = dict(coordinator_address=os.environ["JAXVISION_COORDINATOR"],
                  num_processes=int(os.environ["JAXVISION_NUM_PROCESSES"]),
                  process_id=int(os.environ["JAXVISION_PROCESS_ID"]))
  if os.environ.get("JAX_PLATFORMS", "").startswith("cpu"):
    try:  # the default in recent jax; set explicitly where the option exists
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, KeyError, ValueError):
      pass
  jax.distributed.initialize(**kwargs)
  _initialized = True
