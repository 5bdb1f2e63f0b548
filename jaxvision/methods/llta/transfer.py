"""The transfer evaluation: every attack on the surrogate, every model's predictions, the matrix.

Host-side driver around the pure attacks of `jaxvision.attacks` (each call jitted and sharded
over the mesh's 'data' axis). Images are in [0, 1]; each model applies its own normalisation
(`config.llta.norm`). Success (llta.md §4): 'fooling' = prediction on x_adv differs from the
prediction on x (official); 'misclassification' = prediction on x_adv != true label.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision import attacks
from jaxvision.core import logging as log_lib
from jaxvision.core.errors import ConfigError
from jaxvision.evaluators import attack as attack_eval

SURROGATE = "surrogate"
VICTIM_PREFIX = "victim"


def victim_roles(config) -> list[str]:
  return [r for r in config.models.keys() if r.startswith(VICTIM_PREFIX)]


def victim_name(role: str) -> str:
  return role[len(VICTIM_PREFIX):].lstrip("_") or role


def role_norm(config, role: str) -> tuple[tuple, tuple]:
  """(mean, std) of `role` from config.llta.norm[role] (or 'default'): a pp preset or [m, s]."""
  from jaxvision.data.pp import NORMS
  norms = config.llta.norm
  spec = norms[role] if role in norms else norms.get("default", "imagenet")
  if isinstance(spec, str):
    if spec not in NORMS:
      raise ConfigError(f"llta.norm.{role}='{spec}' is not a preset; use one of "
                        f"{sorted(NORMS)} or [mean, std]")
    m, s = NORMS[spec]
  else:
    try:
      m, s = spec
    except (TypeError, ValueError):
      raise ConfigError(f"llta.norm.{role} must be a preset name or [mean, std], "
                        f"got {spec!r}") from None
  return tuple(float(v) for v in m), tuple(float(v) for v in s)


def attack_configs(config) -> dict:
  """{name: AttackConfig | LLTAConfig} from config.llta; one clear line on bad input."""
  c = config.llta
  names = list(c.attacks)
  if not names:
    raise ConfigError("llta.attacks is empty; name at least one of "
                      f"{', '.join(attacks.ATTACK_NAMES)}")
  unknown = [n for n in names if n not in attacks.ATTACK_NAMES]
  if unknown:
    try:
      attacks.attack_config(unknown[0])
    except ValueError as e:  # unknown attack, with the valid names
      raise ConfigError(f"llta.attacks: {e}") from None
  bad = [n for n in list(c.overrides.keys()) if n not in attacks.ATTACK_NAMES]
  if bad:
    raise ConfigError(f"llta.overrides names unknown attacks {bad}; valid: "
                      f"{', '.join(attacks.ATTACK_NAMES)}")
  out = {}
  for n in names:
    try:
      out[n] = attacks.attack_config(n, eps=float(c.eps), steps=int(c.steps),
                                     **dict(c.overrides.get(n, {})))
    except ValueError as e:
      raise ConfigError(f"llta.attacks '{n}': {e}") from None
  return out


def check_setup(config) -> None:
  """Start-up checks: attack names and budget, roles, labels/criterion, normalisations."""
  c = config.llta
  if SURROGATE not in config.models:
    raise ConfigError("config.models needs a 'surrogate' role (the white-box model)")
  vic = victim_roles(config)
  if not vic:
    raise ConfigError("config.models needs at least one victim role (models.victim_<name>)")
  other = [r for r in config.models.keys() if r != SURROGATE and r not in vic]
  if other:
    raise ConfigError(f"llta roles are 'surrogate' and 'victim_<name>'; unknown roles {other}")
  if c.labels not in ("surrogate", "true"):
    raise ConfigError(f"llta.labels must be 'surrogate' or 'true', got '{c.labels}'")
  if c.criterion not in attack_eval.CRITERIA:
    raise ConfigError(f"llta.criterion must be one of {attack_eval.CRITERIA}, got '{c.criterion}'")
  if int(c.num_images) < 1 or int(c.attack_batch) < 1:
    raise ConfigError("llta.num_images and llta.attack_batch must be >= 1")
  attack_configs(config)
  s_norm = role_norm(config, SURROGATE)
  for r in vic:
    if role_norm(config, r) != s_norm and not bool(c.allow_norm_mismatch):
      raise ConfigError(
          f"victim '{r}' normalises inputs with {role_norm(config, r)} but the surrogate with "
          f"{s_norm}; fix llta.norm.{r}, or set llta.allow_norm_mismatch=True if that victim "
          f"really expects it (each model normalises [0, 1] pixels itself)")


def check_trained_norms(config, dataset) -> None:
  """Trainable roles learn on the dataset's pp: its eval pp must equal attack_pp followed by
  the role's normalisation (else the attack would feed them differently scaled pixels)."""
  from jaxvision.data import base, pp
  probe = base.gather(dataset.eval, np.arange(min(4, len(dataset.eval))))
  rng = np.random.default_rng(0)
  ref = pp.finalize(pp.parse(config.dataset.pp_eval or dataset.pp_eval)(dict(probe), rng))
  raw = pp.finalize(pp.parse(config.llta.attack_pp)(dict(probe), rng))["image"]
  if raw.min() < -1e-6 or raw.max() > 1 + 1e-6:
    raise ConfigError(f"llta.attack_pp='{config.llta.attack_pp}' must give [0, 1] pixels "
                      f"(got [{raw.min():.3g}, {raw.max():.3g}]); leave normalisation to llta.norm")
  for r in config.models.keys():
    if not bool(config.models[r].get("trainable", True)):
      continue
    m, s = role_norm(config, r)
    if not np.allclose((raw - np.asarray(m)) / np.asarray(s), ref["image"], atol=1e-4):
      raise ConfigError(f"role '{r}' is trained on the dataset's pp "
                        f"('{config.dataset.pp_eval or dataset.pp_eval}') but llta.norm gives it "
                        f"mean={m}, std={s}; make llta.norm.{r} match the dataset's normalize")


def load_images(config, dataset) -> tuple[np.ndarray, np.ndarray]:
  """The first llta.num_images eval images in [0, 1] ([N, H, W, C] float32) and labels [N]."""
  from jaxvision.data import base, pp
  n = min(int(config.llta.num_images), len(dataset.eval))
  batch = base.gather(dataset.eval, np.arange(n))
  out = pp.finalize(pp.parse(config.llta.attack_pp)(dict(batch), np.random.default_rng(0)))
  return np.asarray(out["image"], np.float32), np.asarray(out["label"], np.int32)


def _batches(n: int, size: int):
  for s in range(0, n, size):
    yield s, min(s + size, n)


def _pad(a, size: int):
  """Rows to `size` by repeating the last row (dropped after the call)."""
  if a.shape[0] == size:
    return a
  return jnp.concatenate([a, jnp.repeat(a[-1:], size - a.shape[0], axis=0)])


def run_transfer(config, models: Mapping, x: np.ndarray, y_true: np.ndarray, *, mesh=None,
                 seed: int = 0, workdir: str | None = None) -> dict:
  """Runs every attack of config.llta on models['surrogate'] and scores all models.

  models: role -> nnx.Module (eval mode is used). x: [N, H, W, C] in [0, 1]; y_true: [N].
  Returns {"transfer": {...}} for summary.json: the matrix (attack x model, %), fooling and
  misclassification matrices, white-box and black-box-mean success, clean accuracy,
  per-image successes, max L∞ and seconds per attack; writes transfer_matrix.png to workdir.
  """
  c = config.llta
  cfgs = attack_configs(config)
  n = x.shape[0]
  d = 1 if mesh is None else int(mesh.shape.get("data", 1))
  bsz = int(math.ceil(min(int(c.attack_batch), n) / d) * d)
  roles = [SURROGATE] + victim_roles(config)
  surs = {}
  for r in roles:
    m, s = role_norm(config, r)
    surs[r] = attacks.from_nnx(models[r], mean=m, std=s)
  predict = {r: jax.jit(lambda v, z, _s=surs[r][0]: jnp.argmax(_s.apply(v, z), -1))
             for r in roles}

  def preds(role, imgs):
    sur, var = surs[role]
    out = [np.asarray(predict[role](var, _pad(jnp.asarray(imgs[a:b]), bsz)))[:b - a]
           for a, b in _batches(n, bsz)]
    return np.concatenate(out).astype(np.int32)

  clean = {r: preds(r, x) for r in roles}
  labels = clean[SURROGATE] if c.labels == "surrogate" else y_true
  keys = attacks.example_keys(jax.random.key(seed), n)   # per image: batching-independent
  sur, var = surs[SURROGATE]
  matrix = {"fooling": {}, "misclassification": {}}
  per_image = {}
  linf, seconds = {}, {}
  batches = list(_batches(n, bsz))
  bar = log_lib.progress(len(cfgs) * len(batches), 0, enabled=workdir is not None,
                         desc="attacks")
  bar.unit = "batch"
  for name, acfg in cfgs.items():
    bar.set_postfix_str(name)
    fn = attacks.make_attack(acfg, sur, mesh=mesh)
    t0 = time.time()
    adv = []
    for a, b in batches:
      out = fn(var, _pad(jnp.asarray(x[a:b]), bsz), _pad(jnp.asarray(labels[a:b]), bsz),
               _pad(keys[a:b], bsz))
      adv.append(np.asarray(out)[:b - a])
      bar.update(1)
    adv = np.concatenate(adv)
    seconds[name] = time.time() - t0
    if bool(c.quantize_uint8):
      adv = np.floor(adv * 255.0) / 255.0
    budget = attack_eval.check_linf_budget(adv, x, float(c.eps),
                                           atol=1 / 255 if c.quantize_uint8 else 1e-5)
    if not budget["ok"]:
      raise AssertionError(f"attack '{name}' broke the L∞ budget: {budget}")
    linf[name] = budget["max_linf"]
    per_image[name] = {}
    for crit in ("fooling", "misclassification"):
      matrix[crit][name] = {}
    for r in roles:
      pa = preds(r, adv)
      key = r if r == SURROGATE else victim_name(r)
      fool = attack_eval.success(pa, clean[r], criterion="fooling")
      mis = attack_eval.success(pa, labels=y_true, criterion="misclassification")
      matrix["fooling"][name][key] = float(100 * fool.mean())
      matrix["misclassification"][name][key] = float(100 * mis.mean())
      per_image[name][key] = (fool if c.criterion == "fooling" else mis).astype(int).tolist()
    if workdir is not None:  # the main process
      row = matrix[c.criterion][name]
      bb = np.mean([row[victim_name(r)] for r in roles[1:]])
      bar.write(f"jaxvision: attack {name}: {seconds[name]:.0f} s, white-box "
                f"{row[SURROGATE]:.1f} %, black-box mean {bb:.1f} %", file=sys.stderr)
  bar.close()
  main = matrix[c.criterion]
  vic = [victim_name(r) for r in roles[1:]]
  result = {
      "criterion": c.criterion, "models": [SURROGATE] + vic, "attacks": list(cfgs),
      "matrix": main, "fooling": matrix["fooling"],
      "misclassification": matrix["misclassification"],
      "white_box": {a: main[a][SURROGATE] for a in cfgs},
      "black_box_mean": {a: float(np.mean([main[a][v] for v in vic])) for a in cfgs},
      "clean_accuracy": {(r if r == SURROGATE else victim_name(r)):
                         float(100 * np.mean(clean[r] == y_true)) for r in roles},
      "max_linf": linf, "attack_seconds": seconds, "num_images": int(n), "eps": float(c.eps),
      "per_image": {"index": list(range(n)), "label": [int(v) for v in labels],
                    "true_label": [int(v) for v in y_true], "success": per_image},
  }
  if workdir:
    result["heatmap"] = write_heatmap(result, os.path.join(workdir, "transfer_matrix.png"))
  return {"transfer": result}


def format_matrix(t: Mapping, std: Mapping | None = None) -> str:
  """The transfer matrix as a text table (mean ± std when `std` is given)."""
  models = t["models"]
  w = max(14 if std else 9, 2 + max(len(m) for m in models))
  lines = [f"{'attack':<9}" + "".join(f"{m:>{w}}" for m in models) + f"{'bb mean':>{w}}"]
  for a in t["attacks"]:
    vals = [t["matrix"][a][m] for m in models] + [t["black_box_mean"][a]]
    errs = ([std["matrix"][a][m] for m in models] + [std["black_box_mean"][a]]) if std else None
    cells = [f"{v:.1f}±{e:.1f}" if std else f"{v:.1f}" for v, e in
             zip(vals, errs or [0] * len(vals))]
    lines.append(f"{a:<9}" + "".join(f"{s:>{w}}" for s in cells))
  return "\n".join(lines)


def write_heatmap(t: Mapping, path: str, title: str = "") -> str:
  """Heat map PNG of the matrix (attack x model, %), black-box mean as the last column."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  models = list(t["models"]) + ["bb mean"]
  arr = np.array([[t["matrix"][a][m] for m in t["models"]] + [t["black_box_mean"][a]]
                  for a in t["attacks"]])
  fig, ax = plt.subplots(figsize=(1.2 * len(models) + 2, 0.55 * len(t["attacks"]) + 1.5))
  im = ax.imshow(arr, vmin=0, vmax=100, cmap="viridis")
  ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
  ax.set_yticks(range(len(t["attacks"])), t["attacks"])
  for i in range(arr.shape[0]):
    for j in range(arr.shape[1]):
      ax.text(j, i, f"{arr[i, j]:.1f}", ha="center", va="center",
              color="white" if arr[i, j] < 60 else "black", fontsize=8)
  ax.set_title(title or f"transfer success (%, {t['criterion']}), eps={t['eps']:.3g}")
  fig.colorbar(im, ax=ax)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return os.path.basename(path)
