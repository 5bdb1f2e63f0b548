"""Calibrated LPIPS (AlexNet v0.1) against a PyTorch reference written from the lpips package's
definition, random weights; padded batches; clear errors for missing weights."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402

from jaxvision.evaluators import lpips as L  # noqa: E402


def _torch_alexnet_features():
  nn = torch.nn
  return nn.Sequential(  # torchvision.models.alexnet().features, layer for layer
      nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
      nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
      nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
      nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
      nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())


def _torch_lpips(feat, lins, x, y):
  """lpips.LPIPS(net='alex', version='0.1') forward, spatial average (x, y NCHW in [-1, 1])."""
  shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
  scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
  outs = []
  for z in (x, y):
    h, fs = (z - shift) / scale, []
    for i, layer in enumerate(feat):
      h = layer(h)
      if i in (1, 4, 7, 9, 11):
        fs.append(h)
    outs.append(fs)
  val = 0
  for k, (a, b) in enumerate(zip(*outs)):
    na = a / (torch.sqrt(torch.sum(a ** 2, 1, keepdim=True)) + 1e-10)
    nb = b / (torch.sqrt(torch.sum(b ** 2, 1, keepdim=True)) + 1e-10)
    val = val + torch.nn.functional.conv2d((na - nb) ** 2, lins[k]).mean((2, 3))
  return val[:, 0]


@pytest.fixture(scope="module")
def weights():
  torch.manual_seed(0)
  feat = _torch_alexnet_features()
  sd = {f"features.{k}": v for k, v in feat.state_dict().items()}
  lins = [torch.rand(1, c, 1, 1) for c in L.ALEX_WIDTHS]
  lin_sd = {f"lin{j}.model.1.weight": w for j, w in enumerate(lins)}
  return feat, lins, L.load_lpips_alex(sd, lin_sd)


def test_equals_the_torch_definition_and_padding_is_exact(weights):
  feat, lins, params = weights
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(2, 70, 83, 3)).astype(np.float32)
  y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
  t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2) * 2 - 1  # noqa: E731
  with torch.no_grad():
    want = _torch_lpips(feat, lins, t(x), t(y)).numpy()
  got = np.asarray(L.lpips_alex(params, jnp.asarray(x), jnp.asarray(y)))
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  assert float(L.lpips_alex(params, jnp.asarray(x), jnp.asarray(x))[0]) == 0.0
  # A zero-padded batch of two sizes gives each image's own value.
  small = x[1, :45, :61]
  with torch.no_grad():
    want_s = _torch_lpips(feat, lins, t(small[None]), t(y[1:2, :45, :61])).numpy()[0]
  xp, yp = np.zeros_like(x[:2]), np.zeros_like(y[:2])
  xp[0], yp[0] = x[0], y[0]
  xp[1, :45, :61], yp[1, :45, :61] = small, y[1, :45, :61]
  got_p = np.asarray(L.lpips_alex(params, jnp.asarray(xp), jnp.asarray(yp),
                                  jnp.asarray([[70, 83], [45, 61]])))
  np.testing.assert_allclose(got_p, [want[0], want_s], rtol=1e-4, atol=1e-6)


def test_missing_or_wrong_weights_name_the_fix(weights, tmp_path, monkeypatch):
  monkeypatch.setattr(L, "default_lin_path", lambda: "")
  with pytest.raises(L.LPIPSWeightsError, match="AlexNet weights"):
    L.load_lpips_alex("")
  with pytest.raises(L.LPIPSWeightsError, match="pip install lpips"):
    L.load_lpips_alex({"features.0.weight": 0}, "")
  with pytest.raises(L.LPIPSWeightsError, match="not found"):
    L.load_lpips_alex(str(tmp_path / "alexnet.pth"), str(tmp_path / "alex.pth"))
  with pytest.raises(L.LPIPSWeightsError, match="features.3.weight"):
    L.load_lpips_alex({"features.0.weight": torch.zeros(64, 3, 11, 11),
                       "features.0.bias": torch.zeros(64)}, {"lin0.model.1.weight": 0})
