"""LaConvNet language side (spec §3.2): word-level tokenizer, GloVe embedding, GRU + SA encoder.

Tokenizer: HuggingFace `tokenizers` WordLevel model trained on the training expressions.
  Normalisation as the official code: lowercase; strip . , ' ! ? " ( ) * # : ;; '-' and '/'
  become spaces; whitespace split. Special ids PAD=0, UNK=1, CLS=2; sequences are truncated
  or zero-padded to `max_len` (15); the pad mask is (id == 0).
Embedding: 300-d vectors read from a user GloVe text file (`load_glove`), frozen by default
  (official `EMBED_FREEZE`); without a file the table is random N(0, 1) (state this in results).
Encoder: unidirectional single-layer GRU (hidden 512, PyTorch gate equations) -> n_sa MCAN
  self-attention layers (post-LN, 8 heads, FFN 4x ReLU, dropout 0.1). Padded positions of the
  output are zeroed, so padded tokens change nothing downstream.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models import common
from jaxvision.models.laconvnet import McanLayerNorm, _fold, dropout, multi_head_attention

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIALS = (PAD, UNK, CLS)
STRIP_CHARS = ".,'!?\"()*#:;"
MAX_TOKENS = 15


def _tokenizers():
  try:
    import tokenizers  # noqa: PLC0415
  except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("LaConv's tokenizer needs the HuggingFace `tokenizers` package: "
                      "pip install 'jaxvision[laconv]' (or pip install tokenizers).") from e
  return tokenizers


def _new_tokenizer(vocab: dict[str, int] | None):
  tk = _tokenizers()
  from tokenizers import Regex, models, normalizers, pre_tokenizers  # noqa: PLC0415
  tok = tk.Tokenizer(models.WordLevel(vocab, unk_token=UNK) if vocab is not None
                     else models.WordLevel(unk_token=UNK))
  strip = "[" + "".join("\\" + ch for ch in STRIP_CHARS) + "]"
  tok.normalizer = normalizers.Sequence([
      normalizers.Lowercase(), normalizers.Replace(Regex(strip), ""),
      normalizers.Replace(Regex("[-/]"), " ")])
  tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  return tok


@dataclasses.dataclass
class EncodedText:
  """ids: int32 [N, max_len] (PAD=0); mask: bool [N, max_len] True = pad; truncated: count."""
  ids: np.ndarray
  mask: np.ndarray
  truncated: int


class WordTokenizer:
  """Word-level tokenizer over a vocabulary built from training expressions.

      tok = WordTokenizer.build(train_texts, max_len=15)
      enc = tok.encode(["the red circle left of the blue square"])   # EncodedText
  """

  def __init__(self, vocab: dict[str, int], max_len: int = MAX_TOKENS):
    if not isinstance(max_len, int) or max_len < 1:
      raise ValueError(f"max_len must be a positive int, got {max_len!r}.")
    if [vocab.get(s) for s in SPECIALS] != [0, 1, 2]:
      raise ValueError(f"vocab must map {SPECIALS} to ids 0, 1, 2.")
    self.vocab = dict(vocab)
    self.max_len = max_len
    self._tok = _new_tokenizer(self.vocab)

  @classmethod
  def build(cls, texts: Iterable[str], max_len: int = MAX_TOKENS,
            min_frequency: int = 1) -> "WordTokenizer":
    """Trains a WordLevel vocabulary on `texts` (specials first: PAD=0, UNK=1, CLS=2)."""
    from tokenizers import trainers  # noqa: PLC0415
    tok = _new_tokenizer(None)
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIALS), min_frequency=min_frequency,
                                        show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    return cls(tok.get_vocab(), max_len)

  @property
  def vocab_size(self) -> int:
    return len(self.vocab)

  def words(self, text: str) -> list[str]:
    """The normalised words of `text` (before vocabulary lookup and truncation)."""
    norm = self._tok.normalizer.normalize_str(text)
    return [w for w, _ in self._tok.pre_tokenizer.pre_tokenize_str(norm)]

  def encode(self, texts: Sequence[str]) -> EncodedText:
    """Texts -> ids [N, max_len] padded with 0; counts the texts cut at max_len."""
    if isinstance(texts, str):
      raise TypeError("encode takes a list of strings; wrap a single text in a list.")
    encs = self._tok.encode_batch(list(texts))
    n = len(encs)
    ids = np.zeros((n, self.max_len), np.int32)
    truncated = 0
    for i, e in enumerate(encs):
      row = e.ids
      if len(row) > self.max_len:
        truncated += 1
        row = row[:self.max_len]
      ids[i, :len(row)] = row
    return EncodedText(ids, ids == 0, truncated)

  def to_json(self) -> str:
    return json.dumps({"vocab": self.vocab, "max_len": self.max_len})

  @classmethod
  def from_json(cls, s: str) -> "WordTokenizer":
    d = json.loads(s)
    return cls(d["vocab"], d["max_len"])


def load_glove(path: str, vocab: dict[str, int], dim: int = 300, *, seed: int = 0,
               ) -> tuple[np.ndarray, int]:
  """Embedding table [V, dim] from a GloVe text file ('word v1 ... v_dim' per line).

  Words absent from the file get N(0, 1) rows (seeded); the PAD row is zero.
  Returns (table float32, number of vocabulary words found in the file).
  """
  table = np.random.default_rng(seed).standard_normal((len(vocab), dim)).astype(np.float32)
  table[vocab[PAD]] = 0.0
  found = 0
  try:
    f = open(path, encoding="utf8")
  except OSError as e:
    raise FileNotFoundError(f"GloVe file {path!r} cannot be opened ({e}); pass a GloVe text file "
                            "(e.g. glove.840B.300d.txt) or glove_path=None for random init.") from e
  with f:
    for ln, line in enumerate(f):
      parts = line.rstrip().split(" ")
      if len(parts) < dim + 1:
        continue
      word = " ".join(parts[:-dim])
      if word in vocab and word not in SPECIALS:
        try:
          table[vocab[word]] = np.asarray(parts[-dim:], np.float32)
        except ValueError as e:
          raise ValueError(f"{path}:{ln + 1}: expected {dim} floats after the word.") from e
        found += 1
  return table, found


class FrozenEmbedding(nnx.Variable):
  """An embedding table that the optimizer does not train (GloVe, `EMBED_FREEZE`)."""


class GRU(nnx.Module):
  """Single-layer unidirectional GRU (PyTorch equations). x: [B, L, Din] -> [B, L, H]."""

  def __init__(self, din: int, hidden: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    init = nnx.initializers.uniform(2.0 / np.sqrt(hidden))  # shifted to U(-1/sqrt(H), 1/sqrt(H))
    self.hidden = hidden
    self.ih = nnx.Linear(din, 3 * hidden, kernel_init=init, bias_init=init, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)
    self.hh = nnx.Linear(hidden, 3 * hidden, kernel_init=init, bias_init=init, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)
    shift = 1.0 / np.sqrt(hidden)
    for lin in (self.ih, self.hh):
      lin.kernel.set_value(lin.kernel.get_value() - shift)
      lin.bias.set_value(lin.bias.get_value() - shift)

  def __call__(self, x):
    gi = self.ih(x)  # [B, L, 3H] (r, z, n)
    h0 = jnp.zeros((x.shape[0], self.hidden), gi.dtype)

    def step(h, g):
      gh = self.hh(h)
      r = jax.nn.sigmoid(g[:, :self.hidden] + gh[:, :self.hidden])
      z = jax.nn.sigmoid(g[:, self.hidden:2 * self.hidden] + gh[:, self.hidden:2 * self.hidden])
      n = jnp.tanh(g[:, 2 * self.hidden:] + r * gh[:, 2 * self.hidden:])
      h = (1.0 - z) * n + z * h
      return h, h

    _, hs = jax.lax.scan(step, h0, gi.swapaxes(0, 1))
    return hs.swapaxes(0, 1)


class SelfAttentionLayer(nnx.Module):
  """MCAN SA: x = LN(x + drop(MHA(x, x, x, mask))); x = LN(x + drop(FFN(x))). x: [B, L, H]."""

  def __init__(self, hidden: int, heads: int, ffn: int, *, rngs: nnx.Rngs, drop: float = 0.1,
               dtype=jnp.float32):
    self.heads, self.drop = heads, drop
    lin = lambda a, b: common.linear(a, b, rngs=rngs, dtype=dtype)  # noqa: E731
    self.q, self.k, self.v, self.merge = (lin(hidden, hidden) for _ in range(4))
    self.fc1, self.fc2 = lin(hidden, ffn), lin(ffn, hidden)
    self.norm1, self.norm2 = McanLayerNorm(hidden), McanLayerNorm(hidden)

  def __call__(self, x, mask, *, train=False, rng=None):
    a = multi_head_attention(self.q(x), self.k(x), self.v(x), mask, self.heads, drop=self.drop,
                             rng=_fold(rng, 0), train=train)
    x = self.norm1(x + dropout(self.merge(a), self.drop, _fold(rng, 1), train))
    y = self.fc2(dropout(nnx.relu(self.fc1(x)), self.drop, _fold(rng, 2), train))
    return self.norm2(x + dropout(y, self.drop, _fold(rng, 3), train))


class LanguageEncoder(nnx.Module):
  """Token ids -> word features and padding mask.

  Args:
    vocab_size: V (the tokenizer maps unknown words to UNK; ids are clipped to V-1).
    embed_dim: 300 for GloVe. hidden: 512 (= LaConv text_dim).
    embedding: optional [V, embed_dim] table (from `load_glove`); random N(0, 1) otherwise.
    freeze_embedding: keep the table out of the trained parameters (FrozenEmbedding).
  Call: `enc(ids [B, L] int, train=False, rng=None) -> (feats [B, L, hidden], mask [B, L])`,
  mask True where ids == 0 (PAD); feats are zero there.
  """

  def __init__(self, vocab_size: int, *, rngs: nnx.Rngs, embed_dim: int = 300,
               hidden: int = 512, n_sa: int = 1, heads: int = 8, ffn: int | None = None,
               drop: float = 0.1, embedding: np.ndarray | None = None,
               freeze_embedding: bool = True, dtype=jnp.float32):
    dtype = common.resolve_dtype(dtype)
    if embedding is None:
      table = jax.random.normal(rngs.params(), (vocab_size, embed_dim), jnp.float32)
    else:
      table = jnp.asarray(embedding, jnp.float32)
      if table.shape != (vocab_size, embed_dim):
        raise ValueError(f"embedding table is {table.shape}, expected (vocab_size, embed_dim) = "
                         f"{(vocab_size, embed_dim)}.")
    self.vocab_size, self.dtype = vocab_size, dtype
    self.embedding = (FrozenEmbedding if freeze_embedding else nnx.Param)(table)
    self.gru = GRU(embed_dim, hidden, rngs=rngs, dtype=dtype)
    self.sa = nnx.List([SelfAttentionLayer(hidden, heads, ffn or 4 * hidden, rngs=rngs, drop=drop,
                                           dtype=dtype) for _ in range(n_sa)])

  def __call__(self, ids, train: bool = False, rng=None):
    if ids.ndim != 2 or not jnp.issubdtype(ids.dtype, jnp.integer):
      raise ValueError(f"token ids must be int [B, L], got {ids.dtype} {ids.shape}.")
    mask = ids == 0
    e = jnp.take(self.embedding.get_value(), ids, axis=0, mode="clip").astype(self.dtype)
    x = self.gru(e)
    for i, layer in enumerate(self.sa):
      x = layer(x, mask, train=train, rng=_fold(rng, i))
    return jnp.where(mask[..., None], jnp.zeros_like(x), x), mask
