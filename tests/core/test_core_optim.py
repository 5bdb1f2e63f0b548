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


def test_radam_matches_the_pytorch_update_rule():
  """RAdam by hand (torch.optim.RAdam's documented rule, coupled L2): plain bias-corrected
  momentum while rho_t <= 5 (steps 1-5 for b2 = 0.999), rectified adaptive step after."""
  import jax.numpy as jnp
  import numpy as np
  lr, b1, b2, wd, eps = 0.1, 0.9, 0.999, 0.01, 1e-8
  c = config_lib.optim_block(name="radam", lr=lr, b1=b1, b2=b2, weight_decay=wd,
                             schedule="constant")
  tx = optim.make_optimizer(c, steps_per_epoch=1, total_steps=10)
  p = jnp.asarray([1.0, -2.0])
  st = tx.init(p)
  ref, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
  rho_inf = 2 / (1 - b2) - 1
  rectified = []
  for t in range(1, 9):
    g = np.array([0.3, -0.1]) * t + np.sin(ref)
    gt = g + wd * ref
    m, v = b1 * m + (1 - b1) * gt, b2 * v + (1 - b2) * gt * gt
    mh = m / (1 - b1 ** t)
    rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho > 5:
      r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
      ref = ref - lr * mh * r / (np.sqrt(v / (1 - b2 ** t)) + eps)
    else:
      ref = ref - lr * mh
    rectified.append(rho > 5)
    u, st = tx.update(jnp.asarray(g, jnp.float32), st, p)
    p = p + u
    # rtol 3e-4: optax forms rho_t = rho_inf - 2 t b2^t / (1 - b2^t) in float32 (1999 - 1994:
    # about 4 digits cancel), so the rectification factor carries ~1e-4 relative error.
    np.testing.assert_allclose(np.asarray(p), ref, rtol=3e-4, atol=1e-6, err_msg=f"step {t}")
  assert rectified == [False] * 5 + [True] * 3
