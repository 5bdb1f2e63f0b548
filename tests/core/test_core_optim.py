"""The 'linear' schedule (Pix2Pix/CycleGAN): constant, then linear decay to ~0."""
import pytest

from jaxvision import config_lib
from jaxvision.core import optim


def test_linear_schedule_matches_the_pix2pix_rule():
  c = config_lib.optim_block(schedule="linear", lr=1.0, decay_start_epochs=2.0)
  f = optim.lr_schedule(c, steps_per_epoch=10, total_steps=40)
  for t in (0, 10, 20):
    assert float(f(t)) == 1.0
  for t in (21, 30, 39):  # 1 - (t - 20) / (40 - 20 + 1)
    assert float(f(t)) == pytest.approx(1.0 - (t - 20) / 21.0)
