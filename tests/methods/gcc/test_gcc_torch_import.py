"""Official GCC PyTorch generators -> jaxvision: same outputs within 1e-4 (teacher and pruned).

The PyTorch modules below are rebuilt from a reading of the official models/Pix2Pix.py
(UnetGenertor / UnetSkipConnectionBlock, MobileResnetGenerator) and pytorch-CycleGAN's
ResnetGenerator, with the same Sequential layouts, hence the same state_dict keys.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from jaxvision.methods.gcc import torch_import  # noqa: E402
from jaxvision.models.torch_import import CheckpointMismatchError  # noqa: E402


class TorchUnetLevel(nn.Module):
  def __init__(self, level, n, cin, d, up_in, up_out, sub, deepest):
    super().__init__()
    self.outer = level == 1
    down = nn.Conv2d(cin, d, 4, 2, 1, bias=False)
    if self.outer:
      seq = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(up_in, up_out, 4, 2, 1), nn.Tanh()]
    elif level == n:
      seq = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
             nn.ConvTranspose2d(up_in, up_out, 4, 2, 1, bias=False), nn.BatchNorm2d(up_out)]
    else:
      seq = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(d), sub if sub is not None else
             nn.Identity(), nn.ReLU(True), nn.ConvTranspose2d(up_in, up_out, 4, 2, 1, bias=False),
             nn.BatchNorm2d(up_out)]
      if 5 <= level < n:
        seq.append(nn.Dropout(0.5))
    self.model = nn.Sequential(*seq)

  def forward(self, x):
    return self.model(x) if self.outer else torch.cat([x, self.model(x)], 1)


class TorchUnet(nn.Module):
  """widths = [d_1..d_N, u_N..u_2] (GCC filter_cfgs); inner levels with 0 are not built."""

  def __init__(self, widths, n, cin=3, cout=3):
    super().__init__()
    d = [None] + widths[:n]
    u = [None, cout] + [widths[2 * n - i] for i in range(2, n + 1)]
    depth = max(i for i in range(1, n + 1) if all(d[j] and u[j] for j in range(1, i + 1)))
    block = None
    for i in range(depth, 0, -1):
      up_in = d[i] if i == depth else d[i] + u[i + 1]
      block = TorchUnetLevel(i, n, cin if i == 1 else d[i - 1], d[i], up_in, u[i], block,
                             i == depth)
    self.model = block

  def forward(self, x):
    return self.model(x)


class TorchSep(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, groups=cin), nn.InstanceNorm2d(cin),
                              nn.Conv2d(cin, cout, 1))

  def forward(self, x):
    return self.conv(x)


class TorchBlock(nn.Module):
  def __init__(self, c, mid, mobile):
    super().__init__()
    conv = (lambda a, b: TorchSep(a, b)) if mobile else (lambda a, b: nn.Conv2d(a, b, 3))
    seq = [nn.ReflectionPad2d(1), conv(c, mid), nn.InstanceNorm2d(mid), nn.ReLU(True)]
    if mobile:
      seq.append(nn.Dropout(0.0))
    seq += [nn.ReflectionPad2d(1), conv(mid, c), nn.InstanceNorm2d(c)]
    self.conv_block = nn.Sequential(*seq)

  def forward(self, x):
    return x + self.conv_block(x)


class TorchResnetG(nn.Module):
  """cfg: mobile [c0, c1, c2, (mid, res) x n, u1, u2]; plain [c0, c1, c2, mid x n, u1, u2]."""

  def __init__(self, cfg, n_blocks, mobile):
    super().__init__()
    c0, c1, c2 = cfg[:3]
    mids = cfg[3:3 + 2 * n_blocks:2] if mobile else cfg[3:3 + n_blocks]
    u1, u2 = cfg[-2:]
    IN = nn.InstanceNorm2d
    m = [nn.ReflectionPad2d(3), nn.Conv2d(3, c0, 7), IN(c0), nn.ReLU(True),
         nn.Conv2d(c0, c1, 3, 2, 1), IN(c1), nn.ReLU(True), nn.Conv2d(c1, c2, 3, 2, 1), IN(c2),
         nn.ReLU(True)]
    m += [TorchBlock(c2, mid, mobile) for mid in mids]
    m += [nn.ConvTranspose2d(c2, u1, 3, 2, 1, output_padding=1), IN(u1), nn.ReLU(True),
          nn.ConvTranspose2d(u1, u2, 3, 2, 1, output_padding=1), IN(u2), nn.ReLU(True),
          nn.ReflectionPad2d(3), nn.Conv2d(u2, 3, 7), nn.Tanh()]
    self.model = nn.Sequential(*m)

  def forward(self, x):
    return self.model(x)


def _randomise(net, seed):
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in net.state_dict().items():
      if p.dtype.is_floating_point:
        if name.endswith("running_var"):
          p.copy_(0.5 + torch.rand(p.shape, generator=g))
        else:
          p.copy_(0.3 * torch.randn(p.shape, generator=g))
  return net.eval()


def _compare(net, kind, x, **kw):
  want = net(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
  ckpt = {"G": net.state_dict(), "epoch": 3, "cfg": None}          # GCC save_models layout
  g = torch_import.load_generator(ckpt, kind, **kw)
  gdef, st = nnx.split(g)
  fwd = jax.jit(lambda st, x: nnx.merge(gdef, st)(x, train=False))   # one compile, not per op
  got = np.asarray(fwd(st, jnp.asarray(x.transpose(0, 2, 3, 1))))
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-4)
  return g


def test_unet_teacher_and_pruned_student_match_torch():
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
  teacher = [2, 4, 8, 16, 16, 16, 16, 16, 8, 4, 2]        # ngf 2, 6 downs (64x64 -> 1x1)
  g = _compare(_randomise(TorchUnet(teacher, 6), 1), "pix2pix_unet", x, num_downs=6)
  assert g.widths == teacher
  # pruned: level 6 removed (GCC sets it to 0), odd widths elsewhere
  student = [3, 5, 9, 7, 6, 0, 0, 2, 5, 4, 6]
  g = _compare(_randomise(TorchUnet(student, 6), 2), "pix2pix_unet", x, num_downs=6)
  assert g.widths == student and g.depth == 5


@pytest.mark.parametrize("mobile", [True, False])
def test_resnet_generators_match_torch(mobile):
  x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
  if mobile:
    cfg = [3, 5, 6, 4, 6, 2, 6, 5, 6, 4, 5]            # a pruned cfg, 3 blocks
  else:
    cfg = [3, 5, 6, 4, 2, 5, 4, 5]
  kind = "mobile_resnet_generator" if mobile else "resnet_generator"
  g = _compare(_randomise(TorchResnetG(cfg, 3, mobile), 3), kind, x, n_blocks=3)
  assert g.widths == cfg


def test_import_errors_name_the_problem():
  net = TorchResnetG([3, 5, 6, 4, 6, 2, 6, 5, 6, 4, 5], 3, True)
  sd = dict(net.state_dict())
  sd["extra.weight"] = torch.zeros(1)
  with pytest.raises(CheckpointMismatchError, match="not used"):
    torch_import.load_generator(sd, "mobile_resnet_generator", n_blocks=3)
  with pytest.raises(CheckpointMismatchError, match="has 3 residual blocks, expected 9"):
    torch_import.load_generator(TorchResnetG([3, 5, 6, 4, 2, 5, 4, 5], 3, False).state_dict(),
                                "resnet_generator")
  with pytest.raises(CheckpointMismatchError, match="missing from the checkpoint"):
    torch_import.load_generator(net.state_dict(), "resnet_generator", n_blocks=3)
  with pytest.raises(ValueError, match="kind must be one of"):
    torch_import.load_generator(sd, "sagan")
