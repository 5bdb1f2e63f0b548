"""AutoDL-format datasets built from data that ships with the install.

  digits           image   sklearn `load_digits` (1797 8x8 grey digits, 0..16 -> [0, 1]),
                           1x8x8x1 PNG frames, K=10.
  breast_cancer    tabular sklearn `load_breast_cancer` (569 x 30), 1x1x30x1 dense, K=2.
  wine             tabular sklearn `load_wine` (178 x 13), 1x1x13x1 dense, K=3.
  wine_multilabel  tabular wine without its proline column (1x1x12x1); labels = the 3
                           cultivars + "proline above the median" (K=4, rows have 2 labels).
  moving_digits    video   sklearn digits, each pasted in a 16x16 frame and translated in a
                           straight line across 8 frames (random start/end per clip),
                           8x16x16x1 PNG frames, K=10 (the digit).
  sonified_digits  speech  sklearn digits read as spectrograms: image row r drives a sine at
                           the r-th of 8 mel-spaced frequencies (300-3400 Hz), columns are
                           8 time segments; 0.3-0.45 s at 16 kHz with a random pitch factor
                           (±6%) and noise; [T,1,1,1] dense, variable T, K=10.
  docstrings       text    docstrings (>200 characters, first 200 word tokens, lower-cased
                           a-z words, the package names removed) of public objects of numpy
                           (core, linalg, fft, ma), scipy (stats, signal, optimize, linalg,
                           interpolate), scikit-learn (linear_model, ensemble, metrics,
                           preprocessing, cluster, decomposition) and matplotlib.pyplot,
                           <= 180 per package; label = package (K=4); the vocabulary is the
                           channel_to_index_map; [T,1,1,1] token ids, variable T.

Splits are stratified 70/30 with the given seed.
"""
from __future__ import annotations

import os
import re

import numpy as np

from jaxvision.autodl import data as data_lib

DATASETS = ("digits", "breast_cancer", "wine", "wine_multilabel", "moving_digits",
            "sonified_digits", "docstrings")
DOMAIN = {"digits": "image", "breast_cancer": "tabular", "wine": "tabular",
          "wine_multilabel": "tabular", "moving_digits": "video", "sonified_digits": "speech",
          "docstrings": "text"}


def _split(y_int: np.ndarray, seed: int, test_frac: float = 0.3):
  from sklearn.model_selection import train_test_split  # pylint: disable=g-import-not-at-top
  idx = np.arange(len(y_int))
  return train_test_split(idx, test_size=test_frac, random_state=seed, stratify=y_int)


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
  return np.eye(k, dtype=np.float32)[y]


def digits(seed: int):
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  d = load_digits()
  x = (d.images / 16.0).astype(np.float32)[:, None, :, :, None]  # [n, 1, 8, 8, 1]
  return list(x), _onehot(d.target, 10), d.target, "png", [str(i) for i in range(10)], None


def breast_cancer(seed: int):
  from sklearn.datasets import load_breast_cancer  # pylint: disable=g-import-not-at-top
  d = load_breast_cancer()
  x = d.data.astype(np.float32)[:, None, None, :, None]
  return list(x), _onehot(d.target, 2), d.target, "dense", list(d.target_names), None


def wine(seed: int):
  from sklearn.datasets import load_wine  # pylint: disable=g-import-not-at-top
  d = load_wine()
  x = d.data.astype(np.float32)[:, None, None, :, None]
  return list(x), _onehot(d.target, 3), d.target, "dense", list(d.target_names), None


def wine_multilabel(seed: int):
  from sklearn.datasets import load_wine  # pylint: disable=g-import-not-at-top
  d = load_wine()
  j = list(d.feature_names).index("proline")
  high = (d.data[:, j] > np.median(d.data[:, j])).astype(np.float32)
  x = np.delete(d.data, j, axis=1).astype(np.float32)[:, None, None, :, None]
  y = np.concatenate([_onehot(d.target, 3), high[:, None]], 1)
  return (list(x), y, d.target * 2 + high.astype(int), "dense",
          list(d.target_names) + ["high_proline"], None)


def slide(img: np.ndarray, rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
  """[h, w] in [0, 1] pasted into `frames` [size, size] frames, moving in a straight line
  from a random start to a random end (rounded to pixels, quantised to 1/255):
  [frames, size, size, 1]."""
  h, w = img.shape
  (r0, c0), (r1, c1) = rng.integers(0, size - max(h, w) + 1, size=(2, 2))
  clip = np.zeros((frames, size, size, 1), np.float32)
  for t in range(frames):
    a = t / (frames - 1)
    r, c = int(round(r0 + a * (r1 - r0))), int(round(c0 + a * (c1 - c0)))
    clip[t, r:r + h, c:c + w, 0] = img
  return np.round(clip * 255) / 255


def moving_digits(seed: int, n: int = 600, frames: int = 8, size: int = 16):
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  d = load_digits()
  rng = np.random.default_rng(1000 + seed)
  pick = rng.choice(len(d.target), n, replace=False)
  xs = [slide(d.images[i] / 16.0, rng, frames, size) for i in pick]
  y = d.target[pick]
  return xs, _onehot(y, 10), y, "png", [str(i) for i in range(10)], None


def sonified_digits(seed: int, n: int = 600, sr: int = 16000):
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  d = load_digits()
  rng = np.random.default_rng(2000 + seed)
  pick = rng.choice(len(d.target), n, replace=False)
  mel = lambda f: 2595 * np.log10(1 + f / 700)
  imel = lambda m: 700 * (10 ** (m / 2595) - 1)
  freqs = imel(np.linspace(mel(300.0), mel(3400.0), 8))[::-1]  # row 0 = highest pitch
  xs = []
  for i in pick:
    img = d.images[i] / 16.0
    length = int(sr * rng.uniform(0.3, 0.45))
    t = np.arange(length) / sr
    seg = np.minimum((np.arange(length) * 8) // length, 7)
    env = img[:, seg]  # [8, length]: row r's loudness over time
    f = freqs * rng.uniform(0.94, 1.06)
    wav = (env * np.sin(2 * np.pi * f[:, None] * t + rng.uniform(0, 2 * np.pi, (8, 1)))).sum(0)
    wav = 0.1 * wav + 0.02 * rng.standard_normal(length)
    xs.append(wav.astype(np.float32)[:, None, None, None])
  y = d.target[pick]
  return xs, _onehot(y, 10), y, "dense", [str(i) for i in range(10)], None


def _docstring_corpus(per_package: int = 180, max_tokens: int = 200):
  import importlib  # pylint: disable=g-import-not-at-top
  packages = {
      "numpy": ["numpy", "numpy.linalg", "numpy.fft", "numpy.ma"],
      "scipy": ["scipy.stats", "scipy.signal", "scipy.optimize", "scipy.linalg",
                "scipy.interpolate"],
      "sklearn": ["sklearn.linear_model", "sklearn.ensemble", "sklearn.metrics",
                  "sklearn.preprocessing", "sklearn.cluster", "sklearn.decomposition"],
      "matplotlib": ["matplotlib.pyplot"]}
  banned = {"numpy", "np", "scipy", "sp", "sklearn", "scikit", "learn", "matplotlib", "plt",
            "pyplot", "mpl"}
  docs, labels = [], []
  for label, (_, mods) in enumerate(packages.items()):
    seen, texts = set(), []
    for name in mods:
      m = importlib.import_module(name)
      for attr in sorted(dir(m)):
        if attr.startswith("_"):
          continue
        doc = getattr(getattr(m, attr, None), "__doc__", None)
        if isinstance(doc, str) and len(doc) > 200 and doc not in seen:
          seen.add(doc)
          toks = [w for w in re.findall(r"[a-z]+", doc.lower()) if w not in banned]
          texts.append(toks[:max_tokens])
    texts = texts[:per_package]
    docs += texts
    labels += [label] * len(texts)
  return docs, np.asarray(labels), list(packages)


def docstrings(seed: int):
  docs, y, names = _docstring_corpus()
  vocab = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
  xs = [np.asarray([vocab[w] for w in d], np.float32)[:, None, None, None] for d in docs]
  return xs, _onehot(y, len(names)), y, "dense", names, vocab


BUILDERS = {"digits": digits, "breast_cancer": breast_cancer, "wine": wine,
            "wine_multilabel": wine_multilabel, "moving_digits": moving_digits,
            "sonified_digits": sonified_digits, "docstrings": docstrings}


def make_dataset(root: str, name: str, seed: int = 0) -> str:
  """Writes dataset `name` (module doc) under root/name; returns its dataset_dir."""
  if name not in BUILDERS:
    raise ValueError(f"unknown demo dataset {name!r}; choose from {DATASETS}")
  xs, y, strat, fmt, label_names, vocab = BUILDERS[name](seed)
  tr, te = _split(strat, seed)
  out = os.path.join(root, name)
  data_lib.write_dataset(out, name, ([xs[i] for i in tr], y[tr]), ([xs[i] for i in te], y[te]),
                         fmt=fmt, label_names=label_names, channel_to_index_map=vocab,
                         domain=DOMAIN[name])
  return out


# ------------------------------------------------------------------ tiny test sets (§11)
TINY = ("image", "video", "speech", "text", "tabular", "tabular_multilabel")


def make_tiny_autodl(root: str, modality: str, seed: int = 0) -> str:
  """The spec's CPU miniature (§11): writes `tiny_<modality>` under root; returns its dir.

  image 1x16x16x3 JPEG, 120/40, K=4 (a bright bar in one of 4 colours/positions);
  video 4x16x16x3 PNG, 80/40, K=3 (a square moving right, down or diagonally);
  speech T in [800, 1600] sine tones at 16 kHz, 80/40, K=3 frequencies;
  text T in [5, 20] over a 50-word vocabulary, 120/40, K=2 (keyword planted);
  tabular 1x1x10x1, 200/60, K=3 (+ `tabular_multilabel`: 2 labels per row).
  """
  if modality not in TINY:
    raise ValueError(f"unknown tiny modality {modality!r}; choose from {TINY}")
  rng = np.random.default_rng(seed)
  n_tr, n_te, k, fmt, vocab = {"image": (120, 40, 4, "jpeg", None),
                               "video": (80, 40, 3, "png", None),
                               "speech": (80, 40, 3, "dense", None),
                               "text": (120, 40, 2, "dense", None),
                               "tabular": (200, 60, 3, "dense", None),
                               "tabular_multilabel": (200, 60, 3, "dense", None)}[modality]
  n = n_tr + n_te
  cls = np.arange(n) % k
  rng.shuffle(cls)
  xs = []
  for c in cls:
    if modality == "image":
      img = 0.1 * rng.random((16, 16, 3))
      img[:, 4 * c:4 * c + 4, c % 3] = 0.9
      xs.append(img[None])
    elif modality == "video":
      clip = np.zeros((4, 16, 16, 3))
      dr, dc = [(0, 3), (3, 0), (3, 3)][c]
      r0, c0 = rng.integers(0, 4, 2)
      for t in range(4):
        clip[t, r0 + dr * t:r0 + dr * t + 3, c0 + dc * t:c0 + dc * t + 3, :] = 1.0
      xs.append(np.round(clip * 255) / 255)
    elif modality == "speech":
      length = int(rng.integers(800, 1601))
      t = np.arange(length) / 16000
      wav = np.sin(2 * np.pi * [440.0, 1200.0, 3000.0][c] * t) + 0.1 * rng.standard_normal(length)
      xs.append(wav[:, None, None, None])
    elif modality == "text":
      toks = rng.integers(2, 50, int(rng.integers(5, 21)))
      toks[rng.integers(len(toks))] = c  # word 0 or 1 is the keyword of the class
      xs.append(toks.astype(np.float64)[:, None, None, None])
    else:
      mu = np.zeros(10)
      mu[c] = 2.0
      xs.append((mu + rng.standard_normal(10))[None, None, :, None])
  y = np.eye(k, dtype=np.float32)[cls]
  if modality == "tabular_multilabel":
    y[np.arange(n), (cls + 1) % k] = 1.0
  if modality == "text":
    vocab = {f"w{i}": i for i in range(50)}
  name = f"tiny_{modality}"
  out = os.path.join(root, name)
  data_lib.write_dataset(out, name, (xs[:n_tr], y[:n_tr]), (xs[n_tr:], y[n_tr:]), fmt=fmt,
                         channel_to_index_map=vocab,
                         domain=modality.split("_")[0])
  return out
