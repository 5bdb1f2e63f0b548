"""PNG panels: tile framing, grey to RGB, row padding, 8-bit round trip."""
import numpy as np
import pytest
from PIL import Image

from jaxvision.images import panel_rows, save_png


def test_panel_rows_layout_and_png_round_trip(tmp_path):
  rgb = np.full((4, 5, 3), 0.25, np.float32)
  grey = np.full((4, 3), 0.5, np.float32)
  img = panel_rows([[rgb, grey[..., None]], [grey]], pad=1)
  # row 1: (5+2) + (3+2) = 12 wide; row 2 padded to 12; heights (4+2) * 2.
  assert img.shape == (12, 12, 3)
  np.testing.assert_array_equal(img[1, 1], [0.25] * 3)
  np.testing.assert_array_equal(img[1, 8], [0.5] * 3)   # grey tile repeated to RGB
  assert (img[0] == 1.0).all() and (img[6:, 6:] == 1.0).all()  # frames and right padding
  path = save_png(str(tmp_path / "sub" / "p.png"), img * 2 - 0.5)  # clipped to [0, 1]
  back = np.asarray(Image.open(path))
  assert back.shape == (12, 12, 3) and back[1, 1, 0] == 0 and back[1, 8, 0] == 128
  with pytest.raises(ValueError, match="at least one tile"):
    panel_rows([[]])
