"""Every notebook in colabs/ executes top to bottom on CPU (nbclient)."""
import os
import pathlib
import sys

import nbformat
import pytest
from nbclient import NotebookClient

COLABS = sorted((pathlib.Path(__file__).resolve().parents[1] / "colabs").glob("*.ipynb"))


@pytest.mark.parametrize("path", COLABS, ids=[p.stem for p in COLABS])
def test_colab_executes(path, tmp_path, monkeypatch):
  monkeypatch.setenv("JAXVISION_REPO", str(path.parents[1]))
  # notebooks see the real (1) CPU device; compile flags as the rest of the suite
  monkeypatch.setenv("XLA_FLAGS", " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                                           if "device_count" not in f))
  nb = nbformat.read(path, as_version=4)
  client = NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]
  assert not errors
