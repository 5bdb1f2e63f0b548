"""Import of the official GCC PyTorch generators (teacher and pruned student) into jaxvision.

    g = load_generator("model_best_AtoB.pth", "pix2pix_unet")          # widths from shapes
    g = load_generator(ckpt, "mobile_resnet_generator", key="G_A")
    y = g(x_nhwc, train=False)                                          # == torch output

Supported: the U-Net (`UnetGenertor`, any filter/channel cfg incl. removed inner levels), the
mobile ResNet generator (`MobileResnetGenerator`, any cfg) and the plain CycleGAN ResNet
generator. Widths are read from the weight shapes, so a pruned checkpoint needs no cfg.
Conv (O, I, kh, kw) and ConvTranspose (I, O, kh, kw) weights both map with transpose
(2, 3, 1, 0); BatchNorm weight/bias/running stats map to scale/bias/mean/var.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models import gan
from jaxvision.models.torch_import import CheckpointMismatchError, _to_numpy, read_state_dict

KINDS = ("pix2pix_unet", "mobile_resnet_generator", "resnet_generator")


def _sd(path_or_sd, key: str | None) -> dict[str, np.ndarray]:
  if isinstance(path_or_sd, (str, os.PathLike)):
    from jaxvision.models.torch_import import _require_torch
    torch = _require_torch()
    if not os.path.exists(path_or_sd):
      raise FileNotFoundError(f"GCC checkpoint not found: {path_or_sd}; pass the .pth file "
                              f"saved by the official train.py.")
    path_or_sd = torch.load(os.fspath(path_or_sd), map_location="cpu", weights_only=False)
  if isinstance(path_or_sd, Mapping):
    for k in ([key] if key else ["G", "netG", "G_A"]):
      if k in path_or_sd and isinstance(path_or_sd[k], Mapping):
        path_or_sd = path_or_sd[k]
        break
    else:
      if key:
        raise CheckpointMismatchError(f"checkpoint has no '{key}' entry; keys: "
                                      f"{sorted(path_or_sd)[:8]}.")
  sd = read_state_dict(path_or_sd)
  return {k: _to_numpy(v) for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def _get(sd, name):
  if name not in sd:
    raise CheckpointMismatchError(f"key '{name}' missing from the checkpoint; is it a GCC "
                                  f"generator of the requested kind?")
  return sd.pop(name)


def _need(sd, name):
  if name not in sd:
    raise CheckpointMismatchError(f"key '{name}' missing from the checkpoint; is it a GCC "
                                  f"generator of the requested kind?")
  return sd[name]


def _set(var, value: np.ndarray, name: str):
  want = tuple(var[...].shape)
  if tuple(value.shape) != want:
    raise CheckpointMismatchError(f"'{name}': checkpoint shape {tuple(value.shape)} != model "
                                  f"shape {want}.")
  var[...] = jnp.asarray(value, jnp.float32)


def _conv(layer, sd, prefix):
  _set(layer.kernel, np.transpose(_get(sd, prefix + ".weight"), (2, 3, 1, 0)), prefix + ".weight")
  if layer.bias is not None:
    _set(layer.bias, _get(sd, prefix + ".bias"), prefix + ".bias")


def _bn(bn, sd, prefix):
  for ours, theirs in (("scale", "weight"), ("bias", "bias"), ("mean", "running_mean"),
                       ("var", "running_var")):
    _set(getattr(bn, ours), _get(sd, f"{prefix}.{theirs}"), f"{prefix}.{theirs}")


def _unet_prefix(i: int) -> str:
  return "model" if i == 1 else "model.model.1" + ".model.3" * (i - 2)


def unet_widths(sd: Mapping[str, np.ndarray], num_downs: int) -> list[int]:
  """[d_1..d_N, u_N..u_2] read from the conv shapes (0 for removed inner levels)."""
  n = num_downs
  d, u = [0] * (n + 1), [0] * (n + 1)
  for i in range(1, n + 1):
    p = _unet_prefix(i)
    down = f"{p}.model.0.weight" if i == 1 else f"{p}.model.1.weight"
    if down not in sd:
      break
    d[i] = int(sd[down].shape[0])
    up = next((f"{p}.model.{j}.weight" for j in (3, 5) if f"{p}.model.{j}.weight" in sd
               and sd[f"{p}.model.{j}.weight"].ndim == 4), None)
    u[i] = int(sd[up].shape[1]) if up else 0
  return d[1:] + [u[i] for i in range(n, 1, -1)]


def load_unet(sd: dict, model: gan.UnetGenerator) -> None:
  for lv in model.levels:
    p, i = _unet_prefix(lv.level), lv.level
    if i == 1:
      _conv(lv.down_conv, sd, f"{p}.model.0")
      _conv(lv.up_conv, sd, f"{p}.model.3")
    elif lv.innermost:
      _conv(lv.down_conv, sd, f"{p}.model.1")
      _conv(lv.up_conv, sd, f"{p}.model.3")
      _bn(lv.up_bn, sd, f"{p}.model.4")
    else:
      _conv(lv.down_conv, sd, f"{p}.model.1")
      _bn(lv.down_bn, sd, f"{p}.model.2")
      _conv(lv.up_conv, sd, f"{p}.model.5")
      _bn(lv.up_bn, sd, f"{p}.model.6")


def resnet_widths(sd: Mapping[str, np.ndarray], n_blocks: int, mobile: bool) -> list[int]:
  """The GCC cfg ([c0, c1, c2, (mid, res) x n, u1, u2] mobile; [c0, c1, c2, mid x n, u1, u2]
  plain) read from the conv shapes."""
  c = [int(_need(sd, f"model.{i}.weight").shape[0]) for i in (1, 4, 7)]
  blocks = sorted({int(k.split(".")[1]) for k in sd if ".conv_block." in k})
  if len(blocks) != n_blocks:
    if not mobile or len(blocks) > n_blocks:
      raise CheckpointMismatchError(f"checkpoint has {len(blocks)} residual blocks, expected "
                                    f"{n_blocks}; pass n_blocks=.")
    # Skipped (0-width) blocks cannot be located from shapes alone.
    raise CheckpointMismatchError(f"checkpoint has {len(blocks)} of {n_blocks} blocks (pruned "
                                  f"to 0); pass widths= (the GCC cfg) explicitly.")
  inner = "conv_block.1.conv.2" if mobile else "conv_block.1"
  mids = [int(_need(sd, f"model.{b}.{inner}.weight").shape[0]) for b in blocks]
  nb = len(blocks)
  u1 = int(sd[f"model.{10 + nb}.weight"].shape[1])
  u2 = int(sd[f"model.{13 + nb}.weight"].shape[1])
  body = [x for m in mids for x in (m, c[2])] if mobile else mids
  return c + body + [u1, u2]


def load_resnet(sd: dict, model) -> None:
  mobile = isinstance(model, gan.MobileResnetGenerator)
  _conv(model.stem, sd, "model.1")
  _conv(model.down1, sd, "model.4")
  _conv(model.down2, sd, "model.7")
  for j, blk in enumerate(model.blocks):
    p = f"model.{10 + j}.conv_block"
    if mobile:
      _conv(blk.dw1, sd, f"{p}.1.conv.0")
      _conv(blk.pw1, sd, f"{p}.1.conv.2")
      _conv(blk.dw2, sd, f"{p}.6.conv.0")
      _conv(blk.pw2, sd, f"{p}.6.conv.2")
    else:
      _conv(blk.conv1, sd, f"{p}.1")
      _conv(blk.conv2, sd, f"{p}.5")
  nb = len(model.blocks)
  _conv(model.up1, sd, f"model.{10 + nb}")
  _conv(model.up2, sd, f"model.{13 + nb}")
  _conv(model.last, sd, f"model.{17 + nb}")


def load_generator(path_or_state_dict: Any, kind: str, *, key: str | None = None,
                   widths=None, num_downs: int = 8, n_blocks: int = 9, use_dropout: bool = True,
                   dtype=jnp.float32) -> nnx.Module:
  """Builds the jaxvision generator matching an official GCC checkpoint and loads it.

  Args:
    path_or_state_dict: a .pth file saved by GCC (`{'G': state_dict, ...}`), or a state_dict.
    kind: one of KINDS. key: the entry holding the generator ('G', 'G_A', ...; default: the
      first of 'G', 'netG', 'G_A' present, else the mapping itself).
    widths: override the widths read from the weight shapes (needed only for a mobile
      ResNet cfg with 0-width blocks).
  Every checkpoint tensor must be consumed (unexpected keys raise CheckpointMismatchError).
  """
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
  sd = _sd(path_or_state_dict, key)
  if kind == "pix2pix_unet":
    w = widths or unet_widths(sd, num_downs)
    out_c = int(sd["model.model.3.weight"].shape[1])
    in_c = int(sd["model.model.0.weight"].shape[1])
    model = gan.UnetGenerator(out_c, rngs=nnx.Rngs(0), widths=w, num_downs=num_downs,
                              in_channels=in_c, use_dropout=use_dropout, dtype=dtype)
    load_unet(sd, model)
  else:
    mobile = kind == "mobile_resnet_generator"
    w = widths or resnet_widths(sd, n_blocks, mobile)
    cls = gan.MobileResnetGenerator if mobile else gan.ResnetGenerator
    nb = len({k.split(".")[1] for k in sd if ".conv_block." in k})
    out_c = int(sd[f"model.{17 + nb}.weight"].shape[0])
    in_c = int(sd["model.1.weight"].shape[1])
    model = cls(out_c, rngs=nnx.Rngs(0), widths=w, n_blocks=n_blocks, in_channels=in_c,
                dtype=dtype)
    load_resnet(sd, model)
  if sd:
    raise CheckpointMismatchError(f"{len(sd)} checkpoint tensors were not used: "
                                  f"{sorted(sd)[:6]}.")
  return model
