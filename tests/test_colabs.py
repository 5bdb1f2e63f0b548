"""Every notebook in colabs/ executes top to bottom on CPU (nbclient), each in a fresh kernel:
this file runs those not in notebooks.MORE (test_colabs_more.py runs the rest)."""
import pytest

from notebooks import COLABS, MORE, run_notebook

FIRST = [p for p in COLABS if p.stem not in MORE]


def test_groups_name_existing_notebooks():
  assert set(MORE) <= {p.stem for p in COLABS}


@pytest.mark.parametrize("path", FIRST, ids=[p.stem for p in FIRST])
def test_colab_executes(path, tmp_path, monkeypatch):
  run_notebook(path, tmp_path, monkeypatch)
