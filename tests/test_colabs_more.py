"""The notebooks of notebooks.MORE, in their own file so that xdist's loadfile scheduling runs
them on another worker than test_colabs.py."""
import pytest

from notebooks import COLABS, MORE, run_notebook

SECOND = [p for p in COLABS if p.stem in MORE]


@pytest.mark.parametrize("path", SECOND, ids=[p.stem for p in SECOND])
def test_colab_executes(path, tmp_path, monkeypatch):
  run_notebook(path, tmp_path, monkeypatch)
