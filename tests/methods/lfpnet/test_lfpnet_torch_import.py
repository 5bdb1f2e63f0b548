"""Import of the official PyTorch checkpoint layout (spec §5): a PyTorch LFPNet written from the
spec at tiny widths, with the official module names and the shared layers stored twice."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.dirname(__file__))
import lfpnet_testlib as T  # noqa: E402
from torch_lfpnet_ref import TorchLFPNet  # noqa: E402

from jaxvision.methods.lfpnet.torch_import import load_official_checkpoint  # noqa: E402
from jaxvision.models.torch_import import CheckpointMismatchError  # noqa: E402


def _torch_model(shared=True, seed=0):
  torch.manual_seed(seed)
  tm = TorchLFPNet(T.WIDTHS, T.BLOCKS, shared=shared).eval()
  with torch.no_grad():  # perturb GN affine params and biases so every mapping matters
    for p in tm.parameters():
      if p.ndim == 1:
        p.add_(0.1 * torch.randn_like(p))
  return tm


def test_output_matches_pytorch():
  """Both sides in float64 (the mapping is checked far below the 1e-4 target; in float32 this
  random tiny net amplifies rounding through GroupNorm on near-constant 1-channel groups)."""
  tm = _torch_model().double()
  sd = tm.state_dict()
  # The shared layers appear twice (resnet.layerN.* and resN+1.*), as in the released file.
  dup = [k for k in sd if k.startswith("res2.")]
  assert dup and all(torch.equal(sd[k], sd["resnet.layer1." + k[5:]]) for k in dup)
  x, xc, raw, _ = T.random_inputs(0)
  enable_x64 = jax.enable_x64 if hasattr(jax, "enable_x64") else jax.experimental.enable_x64
  with enable_x64(True):
    m = T.build_abstract(dtype="float64")  # every variable comes from the checkpoint
    load_official_checkpoint(m, sd)
    out = np.asarray(T.apply(m, *(jnp.asarray(a, jnp.float64) for a in (x, xc, raw))))
  assert out.dtype == np.float64
  with torch.no_grad():
    ref = [tm(*(torch.from_numpy(np.ascontiguousarray(a[i:i + 1].transpose(0, 3, 1, 2)))
                .double() for a in (x, xc, raw))).numpy().transpose(0, 2, 3, 1)
           for i in range(T.BATCH)]
  ref = np.concatenate(ref, 0)
  assert out.shape == ref.shape
  np.testing.assert_allclose(out, ref, atol=1e-9, rtol=0)
  assert ref[..., 0].std() > 1e-2  # a non-trivial output


def test_shared_copies_loaded_once_and_checked():
  tm = _torch_model()
  sd = {k: v.clone() for k, v in tm.state_dict().items()}
  m = T.build_abstract()  # shapes only: the loader sets every variable
  load_official_checkpoint(m, sd)
  k = "layer1.0.conv1.weight"
  np.testing.assert_array_equal(np.asarray(m.backbone.layer1[0].conv1.conv.kernel[...]),
                                sd["resnet." + k].numpy().transpose(2, 3, 1, 0))
  sd["res2.0.conv1.weight"] = sd["res2.0.conv1.weight"] + 1
  with pytest.raises(CheckpointMismatchError, match="share_backbone=False"):
    load_official_checkpoint(T.build_abstract(), sd)
  un = T.build_abstract(share_backbone=False)
  load_official_checkpoint(un, sd)  # unshared: both copies load, into separate tensors
  np.testing.assert_array_equal(np.asarray(un.mat_backbone.layer1[0].conv1.conv.kernel[...]),
                                sd["res2.0.conv1.weight"].numpy().transpose(2, 3, 1, 0))
  sd["res2.0.conv1.weight"] = sd["resnet.layer1.0.conv1.weight"].clone()
  del sd["se1.c.0.weight"]
  sd["extra.weight"] = torch.zeros(1)
  with pytest.raises(CheckpointMismatchError, match=r"missing \(1\): se1.c.0.weight.*"
                                                    r"\n.*unexpected \(1\): extra.weight"):
    load_official_checkpoint(T.build_abstract(), sd)
