"""Learners per modality, each an anytime schedule of models (autodl.md §6).

Every learner shares one cycle (`Learner`): `train` fetches the next chunk
(data ingestor), then fits within the call's time (`fit_call` returns the
models trained in this call); `test` scores each on the validation split,
adds its test prediction to the ensembler and returns the ensemble, and sets
`done` when the remaining time cannot fit another cycle (margin included).

  image    linear model on pooled pixels (1st call) -> ResNet-18 (zoo) -> ResNet-9
  video    linear model on |FFT| of frames (1st call) -> MC3-style 3-D ResNet
  speech   log-mel (librosa) mean/std + logistic regression -> ThinResNet-34 (JAX) rounds
  text     TF-IDF + linear SVM (first calls) -> TextCNN (JAX)
  tabular  LightGBM grown by 5 rounds a call -> extra trees, logistic, MLP -> blend
"""
from __future__ import annotations

import logging
import time

import numpy as np

from jaxvision.autodl.solution.data_ingestor import DataIngestor
from jaxvision.autodl.solution.evaluator import Ensembler, val_score

log = logging.getLogger("jaxvision.autodl")


# ------------------------------------------------------------------ helpers
def _require(name: str):
  """Imports an optional dependency of the solution, naming the extra on failure."""
  import importlib  # pylint: disable=g-import-not-at-top
  try:
    return importlib.import_module(name)
  except ImportError as e:
    raise ImportError(f"the AutoDL solution needs `{name}`: pip install 'jaxvision[autodl]'") from e


def is_multilabel(y: np.ndarray) -> bool:
  """DeepWisdom's `is_multiclass` flag, named for what it means: a row with > 1 positive."""
  return bool(y.size) and bool(np.any((y > 0).sum(1) > 1))


class LinearModel:
  """Logistic regression, softmax for one-hot labels or one binary model per class.

  Columns/classes absent from the training labels get a constant score.
  predict(X) -> [n, K] probabilities.
  """

  def __init__(self, num_classes: int, multilabel: bool, *, solver: str = "lbfgs",
               max_iter: int = 200, C: float = 1.0, seed: int = 0, balanced: bool = False):
    self.k, self.multilabel = num_classes, multilabel
    self.kw = dict(solver=solver, max_iter=max_iter, C=C, random_state=seed,
                   class_weight="balanced" if balanced else None)

  def fit(self, X, Y):
    from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
    from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
    self.scaler = StandardScaler().fit(X)
    Xs = self.scaler.transform(X)
    self.models, self.const = [], np.zeros(self.k)
    # liblinear has no multinomial mode: one binary model per class (one-vs-rest)
    self.ovr = self.multilabel or self.kw["solver"] == "liblinear"
    if self.ovr:
      for j in range(self.k):
        col = Y[:, j] > 0
        if col.all() or not col.any():
          self.models.append(None)
          self.const[j] = float(col.mean())
        else:
          self.models.append(LogisticRegression(**self.kw).fit(Xs, col))
    else:
      labels = Y.argmax(1)
      if len(np.unique(labels)) < 2:
        self.models = None
        self.const[labels[0]] = 1.0
      else:
        self.models = LogisticRegression(**self.kw).fit(Xs, labels)
    return self

  def predict(self, X) -> np.ndarray:
    Xs = self.scaler.transform(X)
    out = np.tile(self.const, (len(X), 1))
    if self.ovr:
      for j, m in enumerate(self.models):
        if m is not None:
          out[:, j] = m.predict_proba(Xs)[:, 1]
    elif self.models is not None:
      out[:, self.models.classes_] = self.models.predict_proba(Xs)
    return out


def _stack(xs):
  return np.stack(xs) if xs else np.zeros((0,), np.float32)


def _pool(img: np.ndarray, out: int) -> np.ndarray:
  """[..., H, W, C] -> [..., out, out, C] by block means (H, W multiples of out, or crop)."""
  h, w = img.shape[-3:-1]
  fh, fw = max(1, h // out), max(1, w // out)
  img = img[..., :fh * out, :fw * out, :]
  s = img.shape
  return img.reshape(*s[:-3], out, fh, out, fw, s[-1]).mean(axis=(-4, -2))


def resize_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """[H, W, C] -> [h, w, C] bicubic (PIL, per channel), identity when the size matches."""
  if img.shape[:2] == tuple(size):
    return img.astype(np.float32)
  from PIL import Image  # pylint: disable=g-import-not-at-top
  chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], np.float32), mode="F")
                      .resize((size[1], size[0]), Image.BICUBIC)) for c in range(img.shape[-1])]
  return np.stack(chans, -1).astype(np.float32)


def _normalize(x: np.ndarray, mean, std) -> np.ndarray:
  """[..., C] in [0, 1]: RGB (x - mean) / std; grey (x - 0.5) / 0.25 repeated to 3 channels."""
  if x.shape[-1] == 3:
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
  else:
    x = (x - 0.5) / 0.25
    if x.shape[-1] == 1:
      x = np.repeat(x, 3, axis=-1)
  return x.astype(np.float32)


def normalize_image(img: np.ndarray) -> np.ndarray:
  """[..., H, W, C] in [0, 1] -> the image nets' input (ImageNet mean/std for RGB)."""
  return _normalize(img, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def normalize_video(frames: np.ndarray) -> np.ndarray:
  """[..., T, H, W, C] in [0, 1] -> the video net's input (Kinetics mean/std for RGB)."""
  return _normalize(frames, [0.43216, 0.394666, 0.37645], [0.22803, 0.22145, 0.216989])


# ------------------------------------------------------------------ base cycle
class Learner:
  """The shared anytime cycle (module doc). Subclasses set `domain` and `mode`,
  define `transform(x)`, `schedule()` and `fit_call(deadline) -> [(name, fn)]`
  with fn(list of transformed examples) -> [n, K]."""
  domain = ""
  mode = "topk"

  def __init__(self, metadata, opts: dict):
    self.md, self.opts, self.d = metadata, opts, opts[self.domain]
    self.k = metadata.get_output_size()
    self.seed = int(opts["seed"])
    self.no_warmstart = bool(opts["no_warmstart"])
    self.random_init = bool(opts["random_init"]) or self.no_warmstart
    self.ingestor = DataIngestor(metadata.size(), self.schedule(), val_frac=opts["val_frac"],
                                 val_cap=opts["val_cap"], load_all=bool(opts["load_all"]),
                                 seed=self.seed, transform=self.transform)
    self.ensembler = Ensembler(self.mode, top_k=opts["ensemble_top_k"],
                               frac=self.d.get("ensemble_frac", 0.97),
                               std_max=self.d.get("blend_std", 0.01),
                               last_only=bool(opts["last_checkpoint"]))
    self.multilabel = None
    self.done = False
    self.first_rem = None
    self.n_tests, self.n_calls = 0, 0
    self.t_test = self.t_call = 0.0
    self.pending: list = []
    self.history: list[dict] = []

  # subclass hooks
  def schedule(self) -> list[int]:
    return list(self.d.get("load_schedule", []))

  def transform(self, x):
    return x

  def prepare(self, dataset):
    """Called once before the first fetch (shape/statistics scans)."""

  def fit_call(self, deadline: float) -> list:
    raise NotImplementedError

  def finished(self) -> bool:
    return False

  def warmup(self):
    """Called from Model.__init__ (not charged): compile what the metadata allows."""

  def init_notes(self) -> dict:
    """{net: 'random init' | 'weights file PATH ...'} for the nets this learner trains."""
    return {}

  # the cycle
  def next_call_seconds(self) -> float:
    """Expected length of the next train call (the first carries one-off costs: imports,
    scans; so a planned call is expected after it)."""
    return self.call_seconds() if self.n_calls <= 1 else self.t_call

  def margin(self) -> float:
    return self.opts["margin_frac"] * (self.first_rem or 0.0)

  def call_seconds(self) -> float:
    start, inc, cap = self.opts["call_seconds"]
    cap = max(start, cap * (self.first_rem or 1200.0) / 1200.0)
    return min(cap, start + inc * self.n_tests)

  def train(self, dataset, remaining_time_budget=None):
    t = time.time()
    rem = 1200.0 if remaining_time_budget is None else float(remaining_time_budget)
    if self.first_rem is None:
      self.first_rem = rem
      self.prepare(dataset)
    if not self.ingestor.exhausted:
      self.ingestor.fetch(dataset)
    if self.multilabel is None:
      self.multilabel = is_multilabel(self.ingestor.arrays("train")[1])
    budget = min(self.call_seconds(), rem - self.margin() - 1.5 * self.t_test)
    self.pending = self.fit_call(t + max(0.05, budget))
    self.n_calls += 1
    self.t_call = time.time() - t

  def test(self, dataset, remaining_time_budget=None) -> np.ndarray:
    t = time.time()
    xt = self.ingestor.test(dataset)
    xv, yv = self.ingestor.arrays("val")
    for name, fn in self.pending:
      s = val_score(yv, fn(xv)) if len(xv) else 0.0
      self.ensembler.add(name, s, fn(xt))
      self.history.append({"call": self.n_calls, "model": name, "val_nauc": s,
                           "n_train": len(self.ingestor.train_x)})
    self.pending = []
    pred = self.ensembler.predict()
    self.n_tests += 1
    self.t_test = time.time() - t
    if remaining_time_budget is not None:
      rem = float(remaining_time_budget) - self.t_test
      if rem - self.margin() < 1.5 * (self.t_test + self.next_call_seconds()):
        self.done = True
    if self.finished():
      self.done = True
    return pred


# ------------------------------------------------------------------ nets (image, video)
class _NetLearner(Learner):
  """Shared net schedule: quick linear model first, then backbones by config."""

  def quick_features(self, xs) -> np.ndarray:
    raise NotImplementedError

  def build_net(self, name: str, seed: int):
    raise NotImplementedError

  def backbones(self) -> list[str]:
    raise NotImplementedError

  def augment(self):
    return None

  def __init__(self, metadata, opts):
    super().__init__(metadata, opts)
    self.trainer = None
    self.compiled: dict = {}
    self.backbone_i = 0
    self._x = self._y = None
    self._n_cached = -1

  def _train_arrays(self):
    xs, y = self.ingestor.arrays("train")
    if len(xs) != self._n_cached:
      self._x, self._y, self._n_cached = _stack(xs), y, len(xs)
    return self._x, self._y

  def _trainer(self, name: str, fresh: bool):
    """The trainer of backbone `name`; compiled once (warm-up or first use), re-initialised
    (new seed, same compiled steps) when `fresh`."""
    from jaxvision.autodl.solution.nets import NetTrainer  # pylint: disable=g-import-not-at-top
    seed = self.seed + 1000 * self.n_calls
    tr = self.compiled.get(name)
    if tr is None:
      tr = NetTrainer(self.build_net(name, seed), multilabel=bool(self.multilabel),
                      lr=self.d["lr"], momentum=self.d["momentum"],
                      weight_decay=self.d["weight_decay"], tau=self.d["tau"],
                      steps_per_epoch=self.d["steps_per_epoch"],
                      batch_size=self.d["batch_size"], seed=seed, augment=self.augment())
      self.compiled[name] = tr
    elif fresh:
      tr.reset(self.build_net(name, seed), seed)
    tr.multilabel = bool(self.multilabel)
    return tr

  def example_shape(self):
    """Transformed example shape known from the metadata, or None."""
    return None

  def warmup(self):
    shape = self.example_shape()
    if shape is None:
      return
    for name in self.backbones():
      self._trainer(name, fresh=False).warmup(shape, self.k)

  def switch_now(self) -> bool:
    return False

  # pretrained weights (option `pretrained`: a torchvision state_dict file; "" = random init)
  def use_pretrained(self) -> bool:
    """Ablation (a) `random_init` (and `no_warmstart`) ignores the weights."""
    return bool(self.d.get("pretrained")) and not self.random_init

  def state_dict(self) -> dict:
    if getattr(self, "_state_dict", None) is None:
      from jaxvision.models import torch_import  # pylint: disable=g-import-not-at-top
      self._state_dict = torch_import.read_state_dict(self.d["pretrained"])
    return self._state_dict

  def weights_note(self) -> str:
    from jaxvision.autodl.solution import pretrained  # pylint: disable=g-import-not-at-top
    if not self.use_pretrained():
      return pretrained.RANDOM_INIT
    note = getattr(self, "head_note", None)
    return pretrained.describe(self.d["pretrained"]) + (f" ({note})" if note else "")

  def fit_call(self, deadline):
    xs, y = self._train_arrays()
    if self.n_calls == 0 and self.d.get("quick_first", True):
      lin = LinearModel(self.k, self.multilabel, seed=self.seed, max_iter=100).fit(
          self.quick_features(list(xs)), y)
      return [("linear", lambda x: lin.predict(self.quick_features(x)))]
    if self.trainer is not None and self.switch_now():
      self.backbone_i += 1
      self.trainer = None
    name = self.backbones()[self.backbone_i]
    if self.trainer is None or self.no_warmstart:
      self.trainer = self._trainer(name, fresh=True)
    tr = self.trainer
    first = tr.steps < self.d["steps_per_epoch"]
    # the first call trains at most one "epoch" (30 steps); every call stops at its deadline
    tr.fit(xs, y, deadline=deadline, min_steps=1,
           max_steps=self.d["steps_per_epoch"] if first and not self.no_warmstart else None)
    tag = f"{name}@{tr.steps}"
    return [(tag, lambda x: tr.predict(_stack(list(x))))]


class ImageLearner(_NetLearner):
  """Image: size/normalisation rules of §6; linear -> ResNet-18 -> ResNet-9."""
  domain = "image"

  def __init__(self, metadata, opts):
    super().__init__(metadata, opts)
    row, col = metadata.get_matrix_size(0)
    self.rescale = None
    self.aspect = 1.0
    self.size = self._decide_size(row, col) if row > 0 and col > 0 else None

  def _decide_size(self, hs: float, ws: float) -> tuple[int, int]:
    """Native when <= 32; else longest side capped at max_size (x2 when the aspect ratio
    > 2), multiples of 16 via int(x/16+0.8)*16; then upsampled to >= min_size (ours)."""
    self.aspect = max(hs, ws) / max(1.0, min(hs, ws))
    if hs <= 32 and ws <= 32:
      h, w = int(hs), int(ws)
    else:
      cap = self.d["max_size"] * (2 if self.aspect > 2 else 1)
      sc = min(1.0, cap / max(hs, ws))
      r16 = lambda v: max(16, int(v * sc / 16 + 0.8) * 16)
      h, w = r16(hs), r16(ws)
    up = max(1.0, self.d["min_size"] / min(h, w))
    return int(round(h * up)), int(round(w * up))

  def example_shape(self):
    return None if self.size is None else (*self.size, 3)

  def prepare(self, dataset):
    scan = self.ingestor.raw_scan(dataset, 256)
    lo = min(float(x.min()) for x, _ in scan)
    hi = max(float(x.max()) for x, _ in scan)
    self.rescale = (lo, hi) if (lo < -0.01 or hi > 1.01) and hi > lo else None
    self.size = self._decide_size(np.median([x.shape[1] for x, _ in scan]),
                                  np.median([x.shape[2] for x, _ in scan]))

  def transform(self, x):
    img = np.asarray(x[0], np.float32)
    if self.rescale is not None:
      lo, hi = self.rescale
      img = (img - lo) / (hi - lo)
    return normalize_image(resize_image(img, self.size))

  def quick_features(self, xs):
    return _pool(_stack(list(xs)), 8).reshape(len(xs), -1)

  def backbones(self):
    b = list(self.d["backbones"])
    return b[:1] if self.aspect > 2 else b

  def switch_now(self):
    return (self.backbone_i + 1 < len(self.backbones())
            and self.trainer.epoch >= self.d["switch_after_epochs"])

  def build_net(self, name, seed):
    from flax import nnx  # pylint: disable=g-import-not-at-top
    from jaxvision import models  # pylint: disable=g-import-not-at-top
    from jaxvision.autodl.solution import nets  # pylint: disable=g-import-not-at-top,unused-import
    net = models.build(name, self.k, rngs=nnx.Rngs(seed),
                       width_multiplier=self.d["width_multiplier"])
    if name == "resnet18" and self.use_pretrained():
      from jaxvision.autodl.solution import pretrained  # pylint: disable=g-import-not-at-top
      self.head_note = pretrained.load_resnet18(net, dict(self.state_dict()))
    return net

  def init_notes(self):
    return {b: (self.weights_note() if b == "resnet18" else "random init")
            for b in self.backbones()}

  def augment(self):
    if not self.d["hflip"]:
      return None
    def flip(xb, rng):
      m = rng.random(len(xb)) < 0.5
      xb = xb.copy()
      xb[m] = xb[m][:, :, ::-1]
      return xb
    return flip


class VideoLearner(_NetLearner):
  """Video: frames sampled to a fixed count and size; a linear model on translation-
  invariant |FFT| features (1st call) -> MC3-style 3-D ResNet."""
  domain = "video"

  def __init__(self, metadata, opts):
    super().__init__(metadata, opts)
    row, col = metadata.get_matrix_size(0)
    self.size = self._decide_size(row, col) if row > 0 and col > 0 else None

  def _decide_size(self, h, w):
    s = self.d["size"]
    return (int(h), int(w)) if max(h, w) <= s else (s, s)

  def example_shape(self):
    return None if self.size is None else (self.d["frames"], *self.size, 3)

  def prepare(self, dataset):
    x = self.ingestor.raw_scan(dataset, 1)[0][0]
    self.size = self._decide_size(*x.shape[1:3])

  def transform(self, x):
    x = np.asarray(x, np.float32)
    t = self.d["frames"]
    idx = np.linspace(0, len(x) - 1, t).round().astype(int)
    return normalize_video(np.stack([resize_image(x[i], self.size) for i in idx]))

  def quick_features(self, xs):
    """Translation-invariant: time-mean of |2-D FFT| of each grey frame, log1p."""
    a = _stack(list(xs)).mean(-1)  # [n, T, H, W]
    mag = np.abs(np.fft.rfft2(a - a.mean(axis=(-2, -1), keepdims=True)))
    return np.log1p(mag.mean(1)).reshape(len(a), -1)

  def backbones(self):
    return ["mc3"]

  def build_net(self, name, seed):
    from flax import nnx  # pylint: disable=g-import-not-at-top
    from jaxvision.autodl.solution.nets import VideoNet  # pylint: disable=g-import-not-at-top
    net = VideoNet(self.k, rngs=nnx.Rngs(seed), width_multiplier=self.d["width_multiplier"],
                   blocks=tuple(self.d["blocks"]), fc_bias=self.use_pretrained())
    if self.use_pretrained():
      from jaxvision.autodl.solution import pretrained  # pylint: disable=g-import-not-at-top
      self.head_note = pretrained.load_mc3_18(net, dict(self.state_dict()))
    return net

  def init_notes(self):
    return {"mc3_18" if self.use_pretrained() else "mc3": self.weights_note()}


# ------------------------------------------------------------------ speech
STFT_N_FFT, STFT_WIN = 512, 400   # DeepWisdom's / VGGVox's TR34 input: 257 |STFT| bins
class SpeechLearner(Learner):
  """Speech: waveform -> 5 s crop/tile at 16 kHz -> log-mel (librosa; 30 mels, n_fft
  1024, hop 640, fmin 20, fmax 8000) -> per-mel mean and std -> logistic regression
  (liblinear, then lbfgs / SAG as in DeepWisdom's call schedule), then ThinResNet-34
  rounds on per-mel standardised log-mel frames (tr34_n_mels mels, hop tr34_hop_length;
  the same STFT/mel code) whose crop length grows with the rounds (tr34_frames).

  Schedule by call (DeepWisdom's decision_making): K < 10: LR-liblinear, LR-liblinear,
  then TR34; otherwise LR, LR, LR-SAG, then TR34. TR34 trains with Adam (lr 1.75e-3,
  weight decay 1e-3, batch 32): 8 epochs on its first round when K <= 10, else 14, then
  1 per call, each call stopped at its deadline; every round is one ensembler entry.
  Option `tr34_weights` (DeepWisdom's Keras thin_resnet34.h5; "" = random init) loads the
  VoxCeleb weights (pretrained.load_keras_tr34; needs tr34_width_multiplier 1, blocks
  [2,3,3,3] and 257 input rows) and freezes the first 124 Keras layers when K >= 37,
  else 100 (pretrained.keras_tr34_layers gives the order). Option `tr34_features`:
  'logmel' (above) or 'stft' (DeepWisdom's / VGGVox's input: |STFT| with n_fft 512, win
  400, hop tr34_hop_length = 257 rows, each frame standardised over frequency).
  """
  domain = "speech"

  def __init__(self, metadata, opts):
    super().__init__(metadata, opts)
    self.tr34 = None
    self.tr34_rounds = 0
    self._mel_banks: dict = {}
    self._mel_cache = (-1, None)
    self._specs: dict = {}
    self._t_clip = 0.0

  def next_call_seconds(self) -> float:
    """The first TR34 call also computes every clip's spectrogram (about one LR feature
    transform each) and later calls grow with the crop: counted so that `done` is set
    before a call that cannot fit."""
    t = super().next_call_seconds()
    if self.model_at(self.n_calls) != "tr34":
      return t
    r = self.tr34_rounds
    if r == 0:
      ing = self.ingestor
      n = len(ing.train_x) + len(ing.val_x) + len(ing.test_x or [])
      return t + n * self._t_clip
    # a TR34 call costs about its crop length: scale the last one when the crop grows
    return t * self.crop_length(r) / self.crop_length(r - 1)

  def plan(self) -> list[str]:
    return list(self.d["schedule_small_k"] if self.k < 10 else self.d["schedule_large_k"])

  def uses_tr34(self) -> bool:
    return "tr34" in self.plan()

  def model_at(self, call: int) -> str:
    """The model kind trained at train call `call` (0-based; the plan's last repeats)."""
    plan = self.plan()
    return plan[min(call, len(plan) - 1)]

  def crop_length(self, tr34_round: int) -> int:
    """TR34 input frames at round r (grows; the last length repeats)."""
    f = self.d["tr34_frames"]
    return int(f[min(tr34_round, len(f) - 1)])

  def round_epochs(self, tr34_round: int) -> int:
    """First round: 8 epochs when K <= 10, else 14 (tr34_first_epochs); then 1 per call."""
    if tr34_round == 0 or self.no_warmstart:
      return int(self.d["tr34_first_epochs"][0 if self.k <= 10 else 1])
    return int(self.d["tr34_epochs_per_call"])

  def schedule(self):
    n = self.md.size()
    sizes = [max(int(f * n), 1) for f in self.d["load_fractions"]]
    sizes[0] = max(sizes[0], self.d["min_first"])
    return sizes

  def _logmel(self, wav: np.ndarray, n_mels: int, hop: int) -> np.ndarray:
    """[samples] -> log-mel power (dB) [n_mels, frames] (librosa; banks built once)."""
    librosa = _require("librosa")
    d = self.d
    if n_mels not in self._mel_banks:
      self._mel_banks[n_mels] = librosa.filters.mel(sr=d["sample_rate"], n_fft=d["n_fft"],
                                                    n_mels=n_mels, fmin=d["fmin"],
                                                    fmax=d["fmax"])
    power = np.abs(librosa.stft(wav, n_fft=d["n_fft"], hop_length=hop)) ** 2
    return librosa.power_to_db(self._mel_banks[n_mels] @ power, ref=1.0)

  def transform(self, x):
    """-> (LR features [2 n_mels], the clip's first samples that TR34 reads (float16) or
    None when the schedule has no TR34). The TR34 spectrograms are computed when its
    rounds start (`_spec`), so they never delay the first prediction."""
    d = self.d
    t = time.perf_counter()
    wav = np.asarray(x, np.float32).reshape(-1)
    n = int(d["clip_seconds"] * d["sample_rate"])
    wav = np.tile(wav, int(np.ceil(n / max(1, len(wav)))))[:n] if len(wav) < n else wav[:n]
    logmel = self._logmel(wav, d["n_mels"], d["hop_length"])
    feats = np.concatenate([logmel.mean(1), logmel.std(1)]).astype(np.float32)
    self._t_clip = 0.9 * self._t_clip + 0.1 * (time.perf_counter() - t)  # s per clip (EMA)
    if not self.uses_tr34():
      return feats, None
    return feats, wav[:(max(d["tr34_frames"]) - 1) * d["tr34_hop_length"]].astype(np.float16)

  def tr34_n_freq(self) -> int:
    """TR34 input rows: tr34_n_mels, or 257 STFT bins with tr34_features 'stft'."""
    feats = self.d.get("tr34_features", "logmel")
    if feats not in ("logmel", "stft"):
      raise ValueError(f"speech.tr34_features={feats!r}; use 'logmel' or 'stft'")
    return STFT_N_FFT // 2 + 1 if feats == "stft" else int(self.d["tr34_n_mels"])

  def _spec(self, x) -> np.ndarray:
    """Example -> TR34 input [tr34_n_freq(), max(tr34_frames)], cached: log-mel (same
    code as the LR features, hop tr34_hop_length) standardised per mel over time, or
    (tr34_features 'stft') |STFT| (n_fft 512, win 400) standardised per frame over
    frequency as VGGVox / DeepWisdom."""
    hit = self._specs.get(id(x))
    if hit is not None and hit[0] is x:
      return hit[1]
    d = self.d
    wav, n = x[1].astype(np.float32), max(d["tr34_frames"])
    self.tr34_n_freq()  # validates tr34_features
    if d.get("tr34_features", "logmel") == "stft":
      spec = np.abs(_require("librosa").stft(wav, n_fft=STFT_N_FFT, win_length=STFT_WIN,
                                             hop_length=d["tr34_hop_length"]))[:, :n]
      spec = ((spec - spec.mean(0, keepdims=True)) / (spec.std(0, keepdims=True) + 1e-5))
    else:
      spec = self._logmel(wav, d["tr34_n_mels"], d["tr34_hop_length"])[:, :n]
      spec = ((spec - spec.mean(1, keepdims=True)) / (spec.std(1, keepdims=True) + 1e-5))
    self._specs[id(x)] = (x, spec.astype(np.float16))
    return self._specs[id(x)][1]

  @staticmethod
  def _feats(xs) -> np.ndarray:
    return _stack([x[0] for x in xs])

  def _frames(self, xs, length: int | None = None) -> np.ndarray:
    """-> [n, tr34_n_freq(), length, 1] float32 (the first `length` frames)."""
    a = np.stack([self._spec(x)[:, :length] for x in xs])
    return a.astype(np.float32)[..., None]

  def warmup(self):
    """librosa's first STFT loads its FFT back end (seconds); TR34 is compiled for each
    crop length of its schedule (Model.__init__ is not charged)."""
    self.transform(np.zeros((self.d["sample_rate"] // 10, 1, 1, 1), np.float32))
    if self.uses_tr34():
      tr = self._tr34_trainer(fresh=False)
      for f in sorted(set(self.d["tr34_frames"])):
        tr.warmup((self.tr34_n_freq(), int(f), 1), self.k)

  # pretrained (option `tr34_weights`: DeepWisdom's Keras thin_resnet34.h5; "" = random init)
  def use_tr34_weights(self) -> bool:
    """Ablation (a) `random_init` (and `no_warmstart`) ignores the weights."""
    return bool(self.d.get("tr34_weights")) and not self.random_init

  def build_tr34(self, seed: int):
    """ThinResNet34; with tr34_weights the Keras weights are loaded (strict) into it."""
    from flax import nnx  # pylint: disable=g-import-not-at-top
    from jaxvision.autodl.solution import pretrained  # pylint: disable=g-import-not-at-top
    from jaxvision.autodl.solution.nets import ThinResNet34  # pylint: disable=g-import-not-at-top
    d = self.d
    net = ThinResNet34(self.k, rngs=nnx.Rngs(seed), n_freq=self.tr34_n_freq(),
                       width_multiplier=d["tr34_width_multiplier"],
                       blocks=tuple(d["tr34_blocks"]), aggregation=d["tr34_aggregation"])
    if self.use_tr34_weights():
      if getattr(self, "_keras_tr34", None) is None:
        self._keras_tr34 = pretrained.read_keras_h5(d["tr34_weights"])
      self.tr34_head_note = pretrained.load_keras_tr34(net, self._keras_tr34)
    return net

  def tr34_frozen(self, net) -> list[str]:
    """DeepWisdom freezes the first 124 Keras layers (K >= 37; else 100) of the loaded
    net; nothing is frozen under random init."""
    from jaxvision.autodl.solution import pretrained  # pylint: disable=g-import-not-at-top
    if not self.use_tr34_weights():
      return []
    return pretrained.tr34_frozen_paths(net, pretrained.tr34_frozen_count(self.k))

  def _tr34_trainer(self, fresh: bool):
    """The TR34 trainer; compiled once, re-initialised (same compiled steps) when fresh."""
    from jaxvision.autodl.solution.nets import NetTrainer  # pylint: disable=g-import-not-at-top
    seed = self.seed + 1000 * self.n_calls
    d = self.d
    if self.tr34 is None:
      net = self.build_tr34(seed)
      self.tr34 = NetTrainer(net, multilabel=bool(self.multilabel),
                             lr=d["tr34_lr"], optimizer="adam",
                             weight_decay=d["tr34_weight_decay"],
                             batch_size=min(32, d["tr34_batch_size"]), seed=seed,
                             frozen=self.tr34_frozen(net))
    elif fresh:
      self.tr34.reset(self.build_tr34(seed), seed)
    self.tr34.multilabel = bool(self.multilabel)
    return self.tr34

  def _train_frames(self, xs) -> np.ndarray:
    if self._mel_cache[0] != len(xs):
      self._mel_cache = (len(xs), self._frames(xs))
    return self._mel_cache[1]

  def _tr34_round(self, deadline):
    xs, y = self.ingestor.arrays("train")
    r = self.tr34_rounds
    frames = self.crop_length(r)
    tr = self._tr34_trainer(fresh=self.no_warmstart and r > 0)
    X = self._train_frames(xs)
    tr.steps_per_epoch = max(1, -(-len(xs) // tr.batch_size))
    epochs = self.round_epochs(r)

    def crop(xb, rng, frames=frames):  # a random window of the current length
      start = rng.integers(0, xb.shape[2] - frames + 1)
      return xb[:, :, start:start + frames]
    tr.augment = crop
    tr.fit(X, y, deadline=deadline, min_steps=1, max_steps=epochs * tr.steps_per_epoch)
    self.tr34_rounds += 1
    return [(f"tr34@r{r}f{frames}s{tr.steps}",
             lambda x: tr.predict(self._frames(list(x), frames)))]

  def fit_call(self, deadline):
    kind = self.model_at(self.n_calls)
    if kind == "tr34":
      return self._tr34_round(deadline)
    xs, y = self.ingestor.arrays("train")
    kw = {"lr_liblinear": dict(solver="liblinear", max_iter=100),
          "lr": dict(solver="lbfgs", max_iter=100),
          "lr_sag": dict(solver="sag", max_iter=50),
          "lr_full": dict(solver="lbfgs", max_iter=300, C=3.0)}
    if kind not in kw:
      raise ValueError(f"unknown speech model {kind!r} in the schedule; use tr34 or {sorted(kw)}")
    m = LinearModel(self.k, self.multilabel, seed=self.seed, balanced=True, **kw[kind]).fit(
        self._feats(xs), y)
    return [(f"{kind}@{len(xs)}", lambda x: m.predict(self._feats(list(x))))]

  def finished(self):
    if self.uses_tr34():
      return self.tr34_rounds >= self.d["tr34_max_rounds"]
    return self.ingestor.exhausted and self.n_calls >= len(self.plan()) + 1

  def init_notes(self) -> dict:
    from jaxvision.autodl.solution import pretrained  # pylint: disable=g-import-not-at-top
    if not self.uses_tr34():
      return {}
    path = self.d.get("tr34_weights", "") if self.use_tr34_weights() else ""
    return {"thin_resnet34": pretrained.describe_tr34(path, self.k)}


# ------------------------------------------------------------------ text
class TextLearner(Learner):
  """Text: TF-IDF (word 1-2 grams over token ids) + LinearSVC (tol 1e-5,
  max_iter 500; one-vs-rest) for the first calls, then a TextCNN in JAX."""
  domain = "text"
  mode = "relative"

  def __init__(self, metadata, opts):
    super().__init__(metadata, opts)
    vocab = metadata.get_channel_to_index_map()
    self.vocab_size = (max(vocab.values()) + 1) if vocab else 1
    self.trainer = None
    self.compiled = None

  def transform(self, x):
    return np.asarray(x, np.float32).reshape(-1).astype(np.int64)

  def _textcnn(self, fresh: bool):
    """The TextCNN trainer; compiled once, re-initialised (same compiled steps) when fresh."""
    from flax import nnx  # pylint: disable=g-import-not-at-top
    from jaxvision.autodl.solution.nets import NetTrainer, TextCNN  # pylint: disable=g-import-not-at-top
    seed = self.seed + 1000 * self.n_calls
    net = TextCNN(self.k, vocab_size=self.vocab_size, rngs=nnx.Rngs(seed),
                  embed_dim=self.d["embed_dim"], filters=self.d["filters"],
                  kernel_sizes=tuple(self.d["kernel_sizes"]))
    if self.compiled is None:
      self.compiled = NetTrainer(net, multilabel=bool(self.multilabel), lr=self.d["lr"],
                                 optimizer="rmsprop", momentum=0.0,
                                 batch_size=self.d["batch_size"], seed=seed)
    elif fresh:
      self.compiled.reset(net, seed)
    self.compiled.multilabel = bool(self.multilabel)
    return self.compiled

  def warmup(self):
    self._textcnn(fresh=False).warmup((self.d["max_len"],), self.k, dtype=np.int32)

  @staticmethod
  def _docs(xs):
    return [" ".join(map(str, t.tolist())) for t in xs]

  def _tokens(self, xs):
    L = self.d["max_len"]
    out = np.zeros((len(xs), L), np.int32)
    for i, t in enumerate(xs):
      t = np.clip(t[:L], 0, self.vocab_size - 1) + 1
      out[i, :len(t)] = t
    return out

  def fit_call(self, deadline):
    xs, y = self.ingestor.arrays("train")
    if self.n_calls < self.d["svm_calls"]:
      from sklearn.feature_extraction.text import TfidfVectorizer  # pylint: disable=g-import-not-at-top
      from sklearn.svm import LinearSVC  # pylint: disable=g-import-not-at-top
      rows = slice(0, self.d["max_fit_rows"])
      vec = TfidfVectorizer(tokenizer=str.split, token_pattern=None, lowercase=False,
                            ngram_range=(1, 2), max_features=self.d["max_features"],
                            sublinear_tf=True)
      X = vec.fit_transform(self._docs(xs[rows]))
      Y = y[rows]
      models, const = [], np.zeros(self.k)
      for j in range(self.k):
        col = Y[:, j] > 0
        if col.all() or not col.any():
          models.append(None)
          const[j] = float(col.mean())
        else:
          models.append(LinearSVC(tol=1e-5, max_iter=500, random_state=self.seed).fit(X, col))

      def predict(x, vec=vec, models=models, const=const):
        Xt = vec.transform(self._docs(list(x)))
        z = np.tile(const, (Xt.shape[0], 1))
        for j, m in enumerate(models):
          if m is not None:
            z[:, j] = 1.0 / (1.0 + np.exp(-2.0 * m.decision_function(Xt)))
        return z
      return [(f"svm@{len(xs)}", predict)]
    if self.trainer is None or self.no_warmstart:
      self.trainer = self._textcnn(fresh=True)
    self.trainer.steps_per_epoch = max(1, len(xs) // self.d["batch_size"])
    tr = self.trainer
    tok = self._tokens(xs)
    tr.fit(tok, y, deadline=deadline,
           max_steps=self.d["textcnn_epochs_per_call"] * tr.steps_per_epoch)
    return [(f"textcnn@{tr.steps}", lambda x: tr.predict(self._tokens(list(x))))]


# ------------------------------------------------------------------ tabular
class TabularLearner(Learner):
  """Tabular: LightGBM (DeepWisdom's quick parameters) grown 10 rounds, then +5 per
  call up to 40 while data loads; then one more model per call (extra trees,
  logistic regression, MLP: sklearn stand-ins for catboost/xgb/dnn); the §6 blend."""
  domain = "tabular"
  mode = "blend"

  def __init__(self, metadata, opts):
    super().__init__(metadata, opts)
    self.boosters = None
    self.rounds = 0
    self.explore_i = 0

  def transform(self, x):
    return np.asarray(x, np.float32).reshape(-1)

  def _lgb_call(self, X, y, rounds: int, init):
    lgb = _require("lightgbm")
    p = dict(self.d["lgb"], seed=self.seed, num_threads=1)
    if self.multilabel or self.k == 1:
      cols = range(self.k)
      out = []
      for j in cols:
        t = (y[:, j] > 0).astype(np.float64)
        if t.min() == t.max():
          out.append(float(t[0]))
          continue
        prev = init[j] if init is not None and not isinstance(init[j], float) else None
        out.append(lgb.train(dict(p, objective="binary"), lgb.Dataset(X, t), rounds,
                             init_model=prev, keep_training_booster=True))
      return out
    labels = y.argmax(1)
    prev = init[0] if init is not None else None
    if self.k == 2:
      return [lgb.train(dict(p, objective="binary"), lgb.Dataset(X, labels), rounds,
                        init_model=prev, keep_training_booster=True)]
    return [lgb.train(dict(p, objective="multiclass", num_class=self.k), lgb.Dataset(X, labels),
                      rounds, init_model=prev, keep_training_booster=True)]

  def _lgb_predict(self, boosters, X):
    if self.multilabel or self.k == 1:
      return np.stack([np.full(len(X), b) if isinstance(b, float) else b.predict(X)
                       for b in boosters], 1)
    p = boosters[0].predict(X)
    return np.stack([1 - p, p], 1) if self.k == 2 else p

  def fit_call(self, deadline):
    xs, y = self.ingestor.arrays("train")
    X = _stack(xs)
    first, per, cap = self.d["rounds"]
    if not self.ingestor.exhausted or self.rounds < cap:
      n = first if self.boosters is None else per
      init = None if self.no_warmstart else self.boosters
      self.boosters = self._lgb_call(X, y, n, init)
      self.rounds += n
      b = self.boosters
      return [(f"lgb@{self.rounds}", lambda x: self._lgb_predict(b, _stack(list(x))))]
    names = self.d["explore"]
    if self.explore_i >= len(names):
      return []
    name = names[self.explore_i]
    self.explore_i += 1
    if name == "lgb":
      b = self._lgb_call(X, y, 100, None)
      fn = lambda x: self._lgb_predict(b, _stack(list(x)))
    elif name == "logistic":
      m = LinearModel(self.k, self.multilabel, seed=self.seed).fit(X, y)
      fn = lambda x: m.predict(_stack(list(x)))
    else:
      fn = self._sklearn(name, X, y)
    return [(name, fn)]

  def _sklearn(self, name, X, y):
    from sklearn.ensemble import ExtraTreesClassifier  # pylint: disable=g-import-not-at-top
    from sklearn.neural_network import MLPClassifier  # pylint: disable=g-import-not-at-top
    from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
    from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
    if name == "extra_trees":
      m = ExtraTreesClassifier(n_estimators=200, random_state=self.seed, n_jobs=1)
    elif name == "mlp":
      m = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=300,
                                                        random_state=self.seed))
    else:
      raise ValueError(f"unknown tabular model {name!r}; use lgb, extra_trees, logistic, mlp")
    target = (y > 0).astype(int) if self.multilabel else y.argmax(1)
    m.fit(X, target)

    def predict(x):
      Xt = _stack(list(x))
      out = np.zeros((len(Xt), self.k))
      pr = m.predict_proba(Xt)
      if not self.multilabel:
        out[:, m.classes_] = pr
      elif isinstance(pr, list):  # trees: one [n, classes_j] array per column
        for j, (p, cls) in enumerate(zip(pr, m.classes_)):
          cls = list(cls)
          out[:, j] = p[:, cls.index(1)] if 1 in cls else 0.0
      else:
        out[:] = pr
      return out
    return predict

  def finished(self):
    return (self.ingestor.exhausted and self.rounds >= self.d["rounds"][2]
            and self.explore_i >= len(self.d["explore"]))
