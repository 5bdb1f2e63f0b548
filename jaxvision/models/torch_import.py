"""Load PyTorch `state_dict`s (torchvision, pytorchcv, CLR-RNF naming) into jaxvision models.

    model = build("resnet50", 1000, rngs=nnx.Rngs(0))
    load_torch_checkpoint(model, "resnet50.pth", naming="auto", strict=True)

Conversions: conv OIHW -> HWIO (depthwise [C,1,kh,kw] -> [kh,kw,1,C]); linear [out,in] ->
[in,out] (a 1x1-conv classifier [out,in,1,1] is accepted); BatchNorm weight/bias/running_mean/
running_var -> scale/bias/mean/var (`num_batches_tracked` is consumed and ignored).
torch is optional: `pip install 'jaxvision[torch]'` (CI: torch==2.13.0 CPU wheel).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import numpy as np
import jax.numpy as jnp
from flax import nnx

from jaxvision.models import common
from jaxvision.models.googlenet import NAMES as _GOOGLENET_NAMES, GoogLeNet
from jaxvision.models.mobilenet import MobileNetV1, MobileNetV2
from jaxvision.models.resnet import ResNet
from jaxvision.models.resnet_cifar import CifarResNet
from jaxvision.models.small import CNNSmall
from jaxvision.models.vgg import VGG, VGG16_POOL_AFTER

NAMINGS = ("torchvision", "pytorchcv", "clr_rnf")


class CheckpointMismatchError(ValueError):
  """A strict load found missing, unexpected or mis-shaped keys (all listed by name)."""


def _require_torch():
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("Loading PyTorch checkpoints needs torch: pip install 'jaxvision[torch]' "
                      "(or the CPU wheel: pip install torch==2.13.0).") from e
  return torch


# ---------------------------------------------------------------- naming rules (nnx -> torch)
def _dotted(path: str) -> str:
  return path.replace("/", ".")


def _resnet_torchvision(path: str) -> str:
  return (_dotted(path).replace("downsample_conv", "downsample.0")
          .replace("downsample_bn", "downsample.1"))


def _resnet_pytorchcv(path: str, imagenet: bool) -> str:
  parts = path.split("/")
  if parts == ["conv1"]:
    return "features.init_block.conv.conv" if imagenet else "features.init_block.conv"
  if parts == ["bn1"]:
    return "features.init_block.conv.bn" if imagenet else "features.init_block.bn"
  if parts == ["fc"]:
    return "output"
  stage, block, layer = int(parts[0][len("layer"):]), int(parts[1]), parts[2]
  unit = f"features.stage{stage}.unit{block + 1}"
  if layer.startswith("downsample"):
    return f"{unit}.identity_conv.{'conv' if layer.endswith('conv') else 'bn'}"
  kind, idx = ("conv", layer[4:]) if layer.startswith("conv") else ("bn", layer[2:])
  return f"{unit}.body.conv{idx}.{kind}"


def _vgg_sequential(path: str) -> str:
  """kuangliu / CLR-RNF VGG: features = [conv, bn, relu, (pool)] * 13; classifier = Linear."""
  parts = path.split("/")
  if parts[0] == "classifier":
    return "classifier"
  i = int(parts[1])
  idx = 3 * i + sum(1 for p in VGG16_POOL_AFTER if p < i)
  return f"features.{idx + (1 if parts[0] == 'bns' else 0)}"


_GOOGLENET_SEQ = {"b1_conv": "branch1x1.0", "b1_bn": "branch1x1.1",
                  "b3_conv1": "branch3x3.0", "b3_bn1": "branch3x3.1",
                  "b3_conv2": "branch3x3.3", "b3_bn2": "branch3x3.4",
                  "b5_conv1": "branch5x5.0", "b5_bn1": "branch5x5.1",
                  "b5_conv2": "branch5x5.3", "b5_bn2": "branch5x5.4",
                  "b5_conv3": "branch5x5.6", "b5_bn3": "branch5x5.7",
                  "pool_conv": "branch_pool.1", "pool_bn": "branch_pool.2"}


def _googlenet_clr(path: str) -> str:
  parts = path.split("/")
  if parts[0] == "pre_conv":
    return "pre_layers.0"
  if parts[0] == "pre_bn":
    return "pre_layers.1"
  if parts[0] == "linear":
    return "linear"
  return f"{parts[0]}.{_GOOGLENET_SEQ[parts[1]]}"


def _mobilenet_pytorchcv(path: str) -> str:
  parts = path.split("/")
  top = {"stem_conv": "features.init_block.conv", "stem_bn": "features.init_block.bn",
         "final_conv": "features.final_block.conv", "final_bn": "features.final_block.bn",
         "fc": "output"}
  if parts[0] in top:
    return top[parts[0]]
  unit = f"features.stage{int(parts[1]) + 1}.unit{int(parts[2]) + 1}"
  layer = parts[3]
  if layer in ("dw_conv", "dw_bn", "pw_conv", "pw_bn"):
    a, b = layer.split("_")
    return f"{unit}.{a}_conv.{b}"
  kind, idx = ("conv", layer[4:]) if layer.startswith("conv") else ("bn", layer[2:])
  return f"{unit}.conv{idx}.{kind}"


def naming_rules(model: nnx.Module) -> dict[str, Callable[[str], str]]:
  """The supported namings of `model`: {naming: fn(nnx module path) -> torch module prefix}.

  A model class may provide its own with a `torch_naming_rules()` method (EfficientNet, ...)."""
  if hasattr(model, "torch_naming_rules"):
    return model.torch_naming_rules()
  if isinstance(model, CifarResNet):
    return {"clr_rnf": _resnet_torchvision, "torchvision": _resnet_torchvision,
            "pytorchcv": lambda p: _resnet_pytorchcv(p, imagenet=False)}
  if isinstance(model, ResNet):
    return {"torchvision": _resnet_torchvision, "clr_rnf": _resnet_torchvision,
            "pytorchcv": lambda p: _resnet_pytorchcv(p, imagenet=True)}
  if isinstance(model, VGG):
    return {"clr_rnf": _vgg_sequential, "torchvision": _vgg_sequential}
  if isinstance(model, GoogLeNet):
    return {"clr_rnf": _googlenet_clr}
  if isinstance(model, (MobileNetV1, MobileNetV2)):
    return {"pytorchcv": _mobilenet_pytorchcv}
  if isinstance(model, CNNSmall):
    return {"torchvision": _dotted}
  raise TypeError(f"no PyTorch naming known for {type(model).__name__}; supported: CifarResNet, "
                  "ResNet, VGG, GoogLeNet, MobileNetV1/V2, CNNSmall.")


# ---------------------------------------------------------------- expected tensors per layer
def _expected(model: nnx.Module, rule: Callable[[str], str]):
  """Yields (torch_key, variable, convert_fn, expected_torch_shape) for every tensor."""
  for path, mod in common.iter_layers(model):
    prefix = rule(path)
    if isinstance(mod, nnx.Conv):  # 1-, 2- or 3-D: [*spatial, ci, co] <- [co, ci, *spatial]
      k = mod.kernel
      *sp, ci, co = k.get_value().shape
      perm = tuple(range(2, 2 + len(sp))) + (1, 0)
      yield (f"{prefix}.weight", k, lambda a, perm=perm: np.transpose(a, perm),
             (co, ci, *sp))
      if isinstance(mod.bias, nnx.Variable) and mod.bias.get_value() is not None:
        yield f"{prefix}.bias", mod.bias, None, (co,)
    elif isinstance(mod, nnx.Linear):
      k = mod.kernel
      ci, co = k.get_value().shape
      yield (f"{prefix}.weight", k, lambda a: np.transpose(a.reshape(a.shape[0], -1), (1, 0)),
             (co, ci))
      if isinstance(mod.bias, nnx.Variable) and mod.bias.get_value() is not None:
        yield f"{prefix}.bias", mod.bias, None, (co,)
    elif isinstance(mod, nnx.BatchNorm):
      n = mod.mean.get_value().shape[0]
      for tname, var in (("weight", mod.scale), ("bias", mod.bias), ("running_mean", mod.mean),
                         ("running_var", mod.var)):
        if isinstance(var, nnx.Variable) and var.get_value() is not None:
          yield f"{prefix}.{tname}", var, None, (n,)


def _torch_shape(v) -> tuple[int, ...]:
  return tuple(int(s) for s in v.shape)


def _matches(want: tuple, got: tuple) -> bool:
  if want == got:
    return True
  # 1x1-conv classifier (pytorchcv MobileNetV2 `output`) loaded into a Linear.
  return len(want) == 2 and len(got) == 4 and got[2:] == (1, 1) and got[:2] == want


def _to_numpy(v) -> np.ndarray:
  if isinstance(v, np.ndarray):
    return v
  if hasattr(v, "detach"):  # torch.Tensor
    v = v.detach().cpu()
    if v.dtype.is_floating_point and v.dtype != _require_torch().float32:
      v = v.float()
    return v.numpy()
  return np.asarray(v)


def read_state_dict(path_or_state_dict: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
  """Loads a `state_dict` (file path or mapping), unwrapping {'state_dict': ...} / {'model': ...}
  containers and a DataParallel 'module.' prefix. A `.npz` path is read with numpy (the
  layout `export_state_dict` writes; torch is not needed)."""
  if isinstance(path_or_state_dict, (str, os.PathLike)):
    path = os.fspath(path_or_state_dict)
    npz = path.endswith(".npz")  # a state_dict saved with np.savez (no torch needed)
    torch = None if npz else _require_torch()
    if not os.path.exists(path):
      raise FileNotFoundError(f"torch checkpoint not found: {path}")
    if npz:
      with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
    sd = torch.load(path, map_location="cpu", weights_only=False)
  elif isinstance(path_or_state_dict, Mapping):
    sd = path_or_state_dict
  else:
    raise TypeError("expected a checkpoint path or a state_dict mapping, got "
                    f"{type(path_or_state_dict).__name__}.")
  for wrapper in ("state_dict", "model", "net"):
    if isinstance(sd, Mapping) and wrapper in sd and isinstance(sd[wrapper], Mapping):
      sd = sd[wrapper]
      break
  if not isinstance(sd, Mapping):
    raise TypeError(f"checkpoint does not hold a state_dict mapping (got {type(sd).__name__}).")
  sd = dict(sd)
  if sd and all(k.startswith("module.") for k in sd):
    sd = {k[len("module."):]: v for k, v in sd.items()}
  return sd


def detect_naming(model: nnx.Module, sd: Mapping[str, Any]) -> str:
  """The supported naming whose expected keys overlap most with `sd` (first wins on ties)."""
  rules = naming_rules(model)
  keys = set(sd)
  scores = {n: sum(k in keys for k, *_ in _expected(model, r)) for n, r in rules.items()}
  best = max(scores, key=lambda n: scores[n])
  if scores[best] == 0:
    raise CheckpointMismatchError(
        f"no key of the checkpoint matches any naming of {type(model).__name__} "
        f"({sorted(rules)}); first checkpoint keys: {sorted(keys)[:8]}.")
  return best


def load_torch_checkpoint(model: nnx.Module, path_or_state_dict, *, naming: str = "auto",
                          strict: bool = True) -> nnx.Module:
  """Copies a PyTorch state_dict into `model` in place and returns it.

  Args:
    model: a jaxvision model whose structure (widths) matches the checkpoint (see
      `widths_from_state_dict` to build one for a pruned checkpoint).
    path_or_state_dict: a `torch.save`d file or a mapping of name -> tensor/ndarray.
    naming: 'auto' | 'torchvision' | 'pytorchcv' | 'clr_rnf'.
    strict: raise CheckpointMismatchError naming every missing, unexpected and mis-shaped key;
      otherwise load the matching tensors and leave the rest.
  A model with its own checkpoint format (e.g. `laconvnet_vl`: the official LaConvNet file)
  provides `load_torch_state_dict(path_or_state_dict, naming=, strict=)`, used instead.
  """
  custom = getattr(model, "load_torch_state_dict", None)
  if custom is not None:
    return custom(path_or_state_dict, naming=naming, strict=strict)
  sd = read_state_dict(path_or_state_dict)
  rules = naming_rules(model)
  if naming == "auto":
    naming = detect_naming(model, sd)
  if naming not in rules:
    raise ValueError(f"naming {naming!r} is not supported for {type(model).__name__}; "
                     f"choose 'auto' or one of {sorted(rules)}.")
  copy_tensors(_expected(model, rules[naming]), sd, strict=strict,
               title=f"torch checkpoint does not match {type(model).__name__} (naming '{naming}')",
               hint="Build the model with matching widths (widths_from_state_dict) or pass "
                    "strict=False.")
  return model


def copy_tensors(expected, sd: Mapping[str, Any], *, strict: bool, title: str, hint: str,
                 ignore: tuple[str, ...] = ()) -> None:
  """Copies sd[key] (converted) into each variable of `expected` = iterable of
  (torch key, variable, convert fn or None, expected torch shape); BN `num_batches_tracked`
  next to a loaded running_mean and keys starting with `ignore` are skipped. With `strict`,
  raises CheckpointMismatchError(title + every missing / unexpected / mis-shaped key + hint)
  before touching any variable."""
  missing, mismatched, updates, used = [], [], [], set()
  for key, var, conv, want in expected:
    if key not in sd:
      missing.append(key)
      continue
    used.add(key)
    got = _torch_shape(sd[key])
    if not _matches(want, got):
      mismatched.append(f"{key}: checkpoint {got} vs model {want}")
      continue
    updates.append((var, sd[key], conv))
  nbt = "num_batches_tracked"
  used |= {k for k in sd if k.endswith(nbt) and k[:-len(nbt)] + "running_mean" in used}
  unexpected = [k for k in sd if k not in used and not k.startswith(tuple(ignore))]
  if strict and (missing or unexpected or mismatched):
    lines = [f"{title}:"]
    for name, items in (("missing", missing), ("unexpected", unexpected),
                        ("shape mismatch", mismatched)):
      if items:
        lines.append(f"  {name} ({len(items)}): " + ", ".join(items))
    lines.append("  " + hint)
    raise CheckpointMismatchError("\n".join(lines))
  for var, val, conv in updates:
    arr = _to_numpy(val)
    if conv is not None:
      arr = conv(arr)
    var.set_value(jnp.asarray(np.ascontiguousarray(arr), dtype=var.get_value().dtype))


def export_state_dict(model: nnx.Module, naming: str = "torchvision") -> dict[str, np.ndarray]:
  """`model`'s tensors under PyTorch names and layouts (the inverse of
  `load_torch_checkpoint`): save with `np.savez(path, **sd)` and load back with
  `load_torch_checkpoint(model, path)`, or `torch.save({k: torch.from_numpy(v)})` for torch."""
  rules = naming_rules(model)
  if naming not in rules:
    raise ValueError(f"naming {naming!r} is not supported for {type(model).__name__}; "
                     f"choose one of {sorted(rules)}.")
  out = {}
  for key, var, conv, want in _expected(model, rules[naming]):
    arr = np.asarray(var.get_value(), np.float32)
    if conv is not None:  # conv: [*spatial, ci, co] -> [co, ci, *spatial]; linear: [in, out] -> [out, in]
      nd = arr.ndim
      arr = np.transpose(arr, (nd - 1, nd - 2, *range(nd - 2)))
    assert arr.shape == want, (key, arr.shape, want)
    out[key] = np.ascontiguousarray(arr)
  return out


def widths_from_state_dict(name: str, sd, *, naming: str = "auto", **build_kw) -> list[int]:
  """Infers the widths list of registered model `name` from checkpoint shapes (pruned nets).

  Other structure kwargs (e.g. shortcut='B', num_classes) go in `build_kw`.
  """
  import jaxvision.models as models  # pylint: disable=import-outside-toplevel
  sd = read_state_dict(sd)
  num_classes = build_kw.pop("num_classes", 10)
  ref = nnx.eval_shape(lambda: models.build(name, num_classes, rngs=nnx.Rngs(0), **build_kw))
  if not hasattr(ref, "width_sources"):
    raise TypeError(f"model '{name}' does not describe its width sources.")
  rules = naming_rules(ref)
  if naming == "auto":
    naming = detect_naming(ref, sd)
  if naming not in rules:
    raise ValueError(f"naming {naming!r} is not supported for '{name}'; choose one of "
                     f"{sorted(rules)}.")
  out = []
  for path in ref.width_sources():
    key = rules[naming](path) + ".weight"
    if key not in sd:
      raise CheckpointMismatchError(f"cannot infer widths of '{name}': key {key!r} is missing.")
    out.append(_torch_shape(sd[key])[0])
  return out


def maybe_load_pretrained(model: nnx.Module, config) -> nnx.Module:
  """Loads `config.init.torch_checkpoint` into `model` when set (naming from
  `config.init.torch_naming`, default 'auto'; strict unless `config.init.torch_strict` is False).
  Returns the model (unchanged when no checkpoint is configured)."""
  init = config.get("init", None) if hasattr(config, "get") else getattr(config, "init", None)
  if init is None:
    return model
  get = init.get if hasattr(init, "get") else lambda k, d=None: getattr(init, k, d)
  path = get("torch_checkpoint", "")
  if not path:
    return model
  return load_torch_checkpoint(model, path, naming=get("torch_naming", "auto") or "auto",
                               strict=bool(get("torch_strict", True)))
