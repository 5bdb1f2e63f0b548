"""Language side (laconv.md §3.2): tokenizer, GloVe loading, GRU vs PyTorch, padding masks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.methods.laconv import language as lang
from jaxvision.models import laconvnet as L

TEXTS = ["The red circle, left of the blue square!", "the blue square", "a green-triangle (small)",
         "red/blue circle"]


@pytest.fixture(scope="module")
def tok():
  return lang.WordTokenizer.build(TEXTS, max_len=6)


def test_tokenizer_vocab_normalisation_padding_truncation(tok):
  assert [tok.vocab[s] for s in lang.SPECIALS] == [0, 1, 2]
  words = {"the", "red", "circle", "left", "of", "blue", "square", "a", "green", "triangle",
           "small"}
  assert set(tok.vocab) == words | set(lang.SPECIALS)
  assert tok.words('A Green-triangle, "left"/of!') == ["a", "green", "triangle", "left", "of"]
  enc = tok.encode(["the purple circle", "the red circle left of the blue square"])
  v = tok.vocab
  np.testing.assert_array_equal(enc.ids[0], [v["the"], 1, v["circle"], 0, 0, 0])  # purple: UNK
  np.testing.assert_array_equal(enc.mask[0], [False] * 3 + [True] * 3)
  assert enc.ids.shape == (2, 6) and enc.ids.dtype == np.int32
  assert enc.truncated == 1 and not enc.mask[1].any()
  assert lang.WordTokenizer.from_json(tok.to_json()).vocab == tok.vocab
  with pytest.raises(TypeError, match="list"):
    tok.encode("the red circle")


def test_load_glove(tmp_path, tok):
  f = tmp_path / "glove.txt"
  f.write_text("red 1 2 3\nblue 4 5 6\nunused 7 8 9\nbad line\n")
  table, found = lang.load_glove(str(f), tok.vocab, dim=3)
  assert found == 2 and table.shape == (tok.vocab_size, 3)
  np.testing.assert_array_equal(table[tok.vocab["red"]], [1, 2, 3])
  np.testing.assert_array_equal(table[tok.vocab["blue"]], [4, 5, 6])
  np.testing.assert_array_equal(table[0], 0.0)
  with pytest.raises(FileNotFoundError, match="glove_path=None"):
    lang.load_glove(str(tmp_path / "missing.txt"), tok.vocab, dim=3)


def test_gru_matches_pytorch():
  torch = pytest.importorskip("torch")
  gru = lang.GRU(5, 4, rngs=nnx.Rngs(0))
  tg = torch.nn.GRU(5, 4, batch_first=True)
  with torch.no_grad():
    tg.weight_ih_l0.copy_(torch.tensor(np.asarray(gru.ih.kernel.get_value()).T))
    tg.weight_hh_l0.copy_(torch.tensor(np.asarray(gru.hh.kernel.get_value()).T))
    tg.bias_ih_l0.copy_(torch.tensor(np.asarray(gru.ih.bias.get_value())))
    tg.bias_hh_l0.copy_(torch.tensor(np.asarray(gru.hh.bias.get_value())))
  x = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
  want = tg(torch.tensor(x))[0].detach().numpy()
  np.testing.assert_allclose(np.asarray(gru(jnp.asarray(x))), want, atol=1e-5)
  assert np.abs(np.asarray(gru.ih.kernel.get_value())).max() <= 0.5  # U(+-1/sqrt(H))


@pytest.fixture(scope="module")
def encoder_and_block(tok):
  enc = lang.LanguageEncoder(tok.vocab_size, rngs=nnx.Rngs(0), embed_dim=8, hidden=16, heads=4,
                             ffn=32)
  blk = L.LaConvBlock(4, 16, 8, 3, 2, 2, 4, rngs=nnx.Rngs(1))
  return enc, blk


def _forward(enc, blk, ids, x):
  g1, s1 = nnx.split(enc)
  g2, s2 = nnx.split(blk)

  @jax.jit
  def f(s1, s2, ids, x):
    t, m = nnx.merge(g1, s1)(ids)
    return t, m, nnx.merge(g2, s2)(x, t, m)

  return f(s1, s2, ids, x)


def test_padding_tokens_change_nothing(tok, encoder_and_block):
  enc, blk = encoder_and_block
  assert not any("embedding" in str(p) for p, _ in nnx.to_flat_state(nnx.state(enc, nnx.Param)))
  ids = jnp.asarray(tok.encode(["the red circle", "the blue square left of"]).ids)
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 4))
  t, m, y = _forward(enc, blk, ids, x)
  assert t.shape == (2, 6, 16) and m.shape == (2, 6)
  np.testing.assert_array_equal(np.asarray(m), np.asarray(ids == 0))
  assert float(jnp.abs(t[0, 3:]).max()) == 0.0
  # A different PAD embedding: the same outputs.
  emb = enc.embedding.get_value()
  enc.embedding.set_value(emb.at[0].set(50.0))
  t2, _, y2 = _forward(enc, blk, ids, x)
  enc.embedding.set_value(emb)
  np.testing.assert_allclose(np.asarray(t2), np.asarray(t), atol=1e-5)
  np.testing.assert_allclose(np.asarray(y2), np.asarray(y), atol=1e-5)
  # Changing a real word of sample 0 changes sample 0 only.
  ids3 = ids.at[0, 1].set(tok.vocab["green"])
  _, _, y3 = _forward(enc, blk, ids3, x)
  assert not np.allclose(np.asarray(y3[0]), np.asarray(y[0]), atol=1e-4)
  np.testing.assert_allclose(np.asarray(y3[1]), np.asarray(y[1]), atol=1e-6)


def test_encoder_accepts_glove_table_and_checks_shape(tok):
  table = np.ones((tok.vocab_size, 8), np.float32)
  enc = lang.LanguageEncoder(tok.vocab_size, rngs=nnx.Rngs(0), embed_dim=8, hidden=8, heads=2,
                             embedding=table, freeze_embedding=False)
  assert any("embedding" in str(p) for p, _ in nnx.to_flat_state(nnx.state(enc, nnx.Param)))
  with pytest.raises(ValueError, match="embedding table"):
    lang.LanguageEncoder(tok.vocab_size + 1, rngs=nnx.Rngs(0), embed_dim=8, embedding=table)
  with pytest.raises(ValueError, match="int"):
    enc(jnp.zeros((2, 3)))
