"""Explicit name tables per kind (models, datasets, methods, evaluators).

A registry imports the modules that populate it on the first lookup, so
`import jaxvision` stays light (no tfds/grain/torch until a source needs them).
A miss raises `UnknownNameError` listing the valid names.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Iterable


class UnknownNameError(KeyError):
  """A registry lookup with a name that is not registered."""

  def __str__(self):  # KeyError quotes its message; keep it one clean line.
    return str(self.args[0])


class Registry:
  """Name -> object table for one kind of thing.

  Args:
    kind: what is registered ("model", "dataset", ...), used in error messages.
    modules: modules imported on first lookup; importing them registers names.
  """

  def __init__(self, kind: str, modules: Iterable[str] = ()):
    self.kind = kind
    self._modules = tuple(modules)
    self._table: dict[str, Any] = {}
    self._loaded = False

  def _load(self):
    if not self._loaded:
      self._loaded = True
      for m in self._modules:
        importlib.import_module(m)

  def register(self, name: str, obj: Any = None) -> Callable[[Any], Any]:
    """Registers `obj` under `name`; usable as a decorator."""

    def deco(o):
      if name in self._table and self._table[name] is not o:
        raise ValueError(f"{self.kind} '{name}' is registered twice")
      self._table[name] = o
      return o

    return deco(obj) if obj is not None else deco

  def get(self, name: str) -> Any:
    self._load()
    if name not in self._table:
      close = difflib.get_close_matches(name, self._table, n=1)
      hint = f" Did you mean '{close[0]}'?" if close else ""
      raise UnknownNameError(
          f"unknown {self.kind} '{name}'.{hint} Valid {self.kind} names: "
          f"{', '.join(self.names())}.")
    return self._table[name]

  def __contains__(self, name: str) -> bool:
    self._load()
    return name in self._table

  def names(self) -> list[str]:
    self._load()
    return sorted(self._table)


MODELS = Registry("model", ["jaxvision.models"])
DATASETS = Registry("dataset", ["jaxvision.data"])
METHODS = Registry("method", ["jaxvision.methods"])
EVALUATORS = Registry("evaluator", ["jaxvision.evaluators"])
# Evaluators the loop drives through one protocol (jaxvision.evaluators.protocol).
LOOP_EVALUATORS = Registry("loop evaluator", ["jaxvision.evaluators.protocol"])
