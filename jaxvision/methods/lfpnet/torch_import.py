"""Import of the released LFPNet PyTorch checkpoint (QLYoo/LFPNet `model.pth`) into `LFPNet`.

    model = LFPNet(rngs=nnx.Rngs(0), context_head=False)
    load_official_checkpoint(model, "model.pth")

The official model shares layer1-4 between its two paths (a mutable default argument), so the
state_dict holds each shared tensor twice, as `resnet.layerN.*` and `res{N+1}.*`. With
`share_backbone=True` the tensors are loaded once (from `resnet.layerN`) after checking that both
copies are identical; with `share_backbone=False` `res{N+1}.*` fill the matting-path copy.
Conv weights go OIHW -> HWIO; GroupNorm weight/bias -> scale/bias; `setensor` [1, C, 1, 1] ->
[1, 1, 1, C]. The [RECON] context-alpha head has no released weights and is left as initialised.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import jax.numpy as jnp
import numpy as np

from jaxvision.models import lfpnet as L
from jaxvision.models.torch_import import CheckpointMismatchError, _to_numpy, read_state_dict


def _conv(m: L.Conv, key: str):
  yield m.kernel, key + ".weight", "oihw"
  if m.bias is not None:
    yield m.bias, key + ".bias", None


def _gn(m, key: str):
  yield m.scale, key + ".weight", None
  yield m.bias, key + ".bias", None


def _convgn(m: L.ConvGN, conv_key: str, gn_key: str):
  yield from _conv(m.conv, conv_key)
  yield from _gn(m.gn, gn_key)


def _seq(m: L.ConvGN, key: str):  # nn.Sequential(conv, GroupNorm, ...)
  yield from _convgn(m, key + ".0", key + ".1")


def _layers(m: L.ResLayers, prefix: str, name_of_layer) -> Iterator:
  for s in range(4):
    for b, blk in enumerate(getattr(m, f"layer{s + 1}")):
      k = f"{name_of_layer(s)}.{b}"
      for i, c in enumerate((blk.conv1, blk.conv2, blk.conv3), 1):
        yield from _convgn(c, f"{prefix}{k}.conv{i}", f"{prefix}{k}.bn{i}")
      if blk.downsample is not None:
        yield from _convgn(blk.downsample, f"{prefix}{k}.downsample.0",
                           f"{prefix}{k}.downsample.1")


def _gres(m: L.GRes, key: str):
  yield from _convgn(m.in_conv, key + ".in_conv1.0", key + ".in_conv1.1.gn")
  for i, blk in ((1, m.block1), (2, m.block2)):
    k = f"{key}.basic_block{i}"
    yield from _convgn(blk.conv1, k + ".conv1", k + ".prelu1.0.gn")
    yield from _convgn(blk.conv2, k + ".conv2.0", k + ".conv2.1.gn")
  yield from _convgn(m.out_conv, key + ".ro_conv.0", key + ".ro_conv.1.gn")


def official_names(model: L.LFPNet) -> Iterator[tuple[Any, str, str | None]]:
  """Yields (nnx variable, official state_dict key, conversion) for every imported tensor."""
  yield from _conv(model.ctx_stem_conv, "resnet_stem.1")
  yield from _gn(model.ctx_stem_gn, "resnet_stem.2")
  yield from _convgn(model.ctx_conv1, "resnet.conv1", "resnet.bn1")
  yield from _layers(model.backbone, "resnet.", lambda s: f"layer{s + 1}")
  if model.mat_backbone is not None:
    yield from _layers(model.mat_backbone, "", lambda s: f"res{s + 2}")
  yield model.seb_gate, "setensor", "gate"
  yield from _conv(model.seb_w1, "se1.c.0")
  yield from _conv(model.seb_w2, "se1.c.2")
  for i, st in enumerate(model.rppm_stages):
    yield from _convgn(st, f"rppm.stages.{i}.1.0", f"rppm.stages.{i}.1.1")
  yield from _conv(model.rppm_trans, "rppm.trans")
  yield from _seq(model.rppm_bottleneck, "rppm.bottleneck")
  for i, br in enumerate(model.aspp):
    yield from _convgn(br, f"aspp.stages.c{i}.conv", f"aspp.stages.c{i}.bn.gn")
  yield from _convgn(model.aspp_pool, "aspp.stages.imagepool.conv.conv",
                     "aspp.stages.imagepool.conv.bn.gn")
  for m, k in ((model.ctx_dec1, "resnet1"), (model.ctx_skip2, "presnet2"),
               (model.ctx_dec2, "resnet2"), (model.ctx_dec3, "resnet3"),
               (model.ctx_dec4, "resnet4"), (model.ctx_dec5, "oesnet5"),
               (model.stem, "stem_conv"), (model.pre, "pre_conv"), (model.res1, "res1"),
               (model.ds1, "ds1"), (model.fuse4, "res2c"), (model.fuse8, "res3c"),
               (model.u4_conv, "res44"), (model.u1, "res11")):
    yield from _seq(m, k)
  for i, p in enumerate(model.ppm):
    yield from _convgn(p, f"ppm.{i}.1", f"ppm.{i}.2.gn")
  yield from _gres(model.u4, "res44.3")
  yield from _gres(model.u3, "res33.0")
  yield from _gres(model.u2, "res22.0")
  yield from _conv(model.head1, "out_conv3")
  yield model.prelu1.weight, "out_prelu3.weight", None
  yield from _conv(model.head2, "out_conv2")
  yield model.prelu2.weight, "out_prelu2.weight", None
  yield from _conv(model.head3, "out_conv1.0")


def _convert(arr: np.ndarray, how: str | None) -> np.ndarray:
  if how == "oihw":
    return arr.transpose(2, 3, 1, 0)
  if how == "gate":
    return arr.reshape(1, 1, 1, -1)
  return arr


def load_official_checkpoint(model: L.LFPNet, path_or_state_dict: str | Mapping[str, Any], *,
                             strict: bool = True) -> L.LFPNet:
  """Copies the official state_dict into `model` in place; returns it.

  strict: raise CheckpointMismatchError naming missing, unexpected and mis-shaped keys (the
  shared copies `res2-5.*` count as used when they equal `resnet.layer1-4.*`).
  """
  sd = {k: v for k, v in read_state_dict(path_or_state_dict).items()
        if not k.endswith("num_batches_tracked")}
  missing, mismatched, used, updates = [], [], set(), []
  for var, key, how in official_names(model):
    if key not in sd:
      missing.append(key)
      continue
    used.add(key)
    arr = _convert(_to_numpy(sd[key]).astype(np.float32), how)
    want = tuple(var.get_value().shape)
    if arr.shape != want:
      mismatched.append(f"{key}: checkpoint {arr.shape} vs model {want}")
      continue
    updates.append((var, arr))
  if model.mat_backbone is None:  # shared: res{N+1}.* must duplicate resnet.layerN.*
    differ = []
    for k in sd:
      head, _, rest = k.partition(".")
      if head in ("res2", "res3", "res4", "res5"):
        twin = f"resnet.layer{int(head[3]) - 1}.{rest}"
        if twin in sd:
          used.add(k)
          if not np.array_equal(_to_numpy(sd[k]), _to_numpy(sd[twin])):
            differ.append(k)
    if differ:
      raise CheckpointMismatchError(
          f"checkpoint has different tensors for the shared backbone ({len(differ)} keys, e.g. "
          f"{differ[0]}); build LFPNet(share_backbone=False) to load both copies.")
  unexpected = sorted(k for k in sd if k not in used)
  if strict and (missing or unexpected or mismatched):
    lines = ["torch checkpoint does not match LFPNet:"]
    for title, items in (("missing", missing), ("unexpected", unexpected),
                         ("shape mismatch", mismatched)):
      if items:
        lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20]) +
                     (" ..." if len(items) > 20 else ""))
    lines.append("  Build LFPNet with the checkpoint's widths (default widths for the released "
                 "model) or pass strict=False.")
    raise CheckpointMismatchError("\n".join(lines))
  for var, arr in updates:
    var.set_value(jnp.asarray(np.ascontiguousarray(arr), dtype=var.get_value().dtype))
  return model
