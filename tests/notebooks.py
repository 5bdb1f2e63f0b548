"""Shared test helper: run a notebook of colabs/ top to bottom in a fresh kernel.

The notebooks are split over tests/test_colabs.py and tests/test_colabs_more.py so that
`pytest -n auto --dist loadfile` runs the two halves on different workers."""
import pathlib

import nbformat
from nbclient import NotebookClient

from subproc import xla_flags

COLABS = sorted((pathlib.Path(__file__).resolve().parents[1] / "colabs").glob("*.ipynb"))
# Run by test_colabs_more.py (about half of the notebooks' CPU time); test_colabs.py runs every
# other notebook, so a new notebook is always tested.
MORE = ("llta", "quickstart", "intraq", "optg", "lfpnet", "autodl")


def run_notebook(path, tmp_path, monkeypatch):
  """Executes the notebook at `path` in a fresh python3 kernel; asserts no cell errored."""
  monkeypatch.setenv("JAXVISION_REPO", str(path.parents[1]))
  # notebooks see the real (1) CPU device; compile flags as the rest of the suite
  monkeypatch.setenv("XLA_FLAGS", xla_flags())
  nb = nbformat.read(path, as_version=4)
  client = NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]
  assert not errors
