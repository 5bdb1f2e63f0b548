"""VQA accuracy with the official answer normalisation (host-side, strings).

Source: laconv.md §5 and the official VQA evaluation code (`vqaEval.py`,
GT-Vision-Lab/VQA), reproduced exactly. Two revisions:
  * revision='master' (default; the current official code, which the
    evaluation server uses): every human answer and the prediction get
    '\\n'/'\\t' -> ' ' and strip; then, only when the (stripped) human answers
    are not all identical, each answer AND the prediction get
    `process_punctuation` + `process_digit_article` (lowercase, number words ->
    digits, drop articles a/an/the, restore contractions such as "dont" ->
    "don't"). When all agree, neither is normalised ("Yes" vs 10 x "yes"
    scores 0).
  * revision='2016' (what many copies still use): the prediction always gets
    '\\n'/'\\t' -> ' ', strip, `process_punctuation`, `process_digit_article`;
    the human answers get only `process_punctuation`, and only when they are
    not all identical (no strip, no lowercasing).
  Acc = (1/10) Σ_i min(1, #{j ≠ i : h_j = a} / 3), the leave-one-annotator-
  out average of min(#matches/3, 1). One match gives 0.3, two 0.6, three
  0.9, four or more 1.0.
Quirks kept from the official code: the period-strip regex removes a '.'
that is not followed by a digit, at most 32 times (re.UNICODE was passed as
the `count` argument).
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import MeanAccumulator

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've",
    "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's",
    "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't",
    "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't",
    "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock",
    "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've",
    "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
    "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's",
    "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd",
    "theyd've": "they'd've", "they'dve": "they'd've", "theyll": "they'll",
    "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've",
    "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've",
    "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll",
    "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
    "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3",
                "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
                "nine": "9", "ten": "10"}
ARTICLES = ("a", "an", "the")
PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">",
         "<", "@", "`", ",", "?", "!")
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def process_punctuation(text: str) -> str:
  """Official punctuation rule: a mark next to a space (or any text with a
  digit,digit comma) is deleted, otherwise replaced by a space; then periods
  not followed by a digit are removed."""
  out = text
  comma_num = _COMMA_STRIP.search(text) is not None
  for p in PUNCT:
    if (p + " " in text or " " + p in text) or comma_num:
      out = out.replace(p, "")
    else:
      out = out.replace(p, " ")
  return _PERIOD_STRIP.sub("", out, count=int(re.UNICODE))


def process_digit_article(text: str) -> str:
  """Lowercase, number words -> digits, drop articles, fix contractions."""
  words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
  words = [CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES]
  return " ".join(words)


def normalize_answer(text: str) -> str:
  """The full normalisation: '\\n'/'\\t' -> ' ', strip, punctuation, digits/articles."""
  text = text.replace("\n", " ").replace("\t", " ").strip()
  return process_digit_article(process_punctuation(text))


REVISIONS = ("master", "2016")


def _clean(text: str) -> str:
  return text.replace("\n", " ").replace("\t", " ").strip()


def vqa_accuracy(pred: str, gt_answers: Sequence[str], revision: str = "master") -> float:
  """Official per-question accuracy in [0, 1] (module doc).

  pred: the predicted answer string; gt_answers: the human answers (10 in
  VQA v1/v2; any number >= 1 works with the same leave-one-out rule);
  revision: 'master' (current official code, default) or '2016'.
  """
  if revision not in REVISIONS:
    raise ValueError(f"revision must be one of {REVISIONS}, got {revision!r}")
  if isinstance(gt_answers, str) or len(gt_answers) == 0:
    raise ValueError("gt_answers must be a non-empty list of answer strings")
  if not isinstance(pred, str) or not all(isinstance(a, str) for a in gt_answers):
    raise ValueError("pred and every gt answer must be strings (decode bytes first)")
  gts = list(gt_answers)
  if revision == "master":
    gts = [_clean(a) for a in gts]
    res = _clean(pred)
    if len(set(gts)) > 1:
      gts = [process_digit_article(process_punctuation(a)) for a in gts]
      res = process_digit_article(process_punctuation(res))
  else:
    res = normalize_answer(pred)
    if len(set(gts)) > 1:
      gts = [process_punctuation(a) for a in gts]
  accs = []
  for i in range(len(gts)):
    matches = sum(1 for j, a in enumerate(gts) if j != i and a == res)
    accs.append(min(1.0, matches / 3.0))
  return float(sum(accs) / len(accs))


@EVALUATORS.register("vqa")
class VqaEvaluator:
  """Mean VQA accuracy (in %) overall and per answer type.

  `update(preds: list[str], gt_answers: list[list[str]], answer_types:
  list[str] | None, mask [B] | None)`; `result()` -> {'accuracy',
  'accuracy/<type>'} in %. revision: 'master' (default) or '2016'.
  """

  def __init__(self, revision: str = "master"):
    if revision not in REVISIONS:
      raise ValueError(f"revision must be one of {REVISIONS}, got {revision!r}")
    self.revision = revision
    self.acc = MeanAccumulator()

  def reset(self):
    self.acc.reset()

  def update(self, preds, gt_answers, answer_types=None, mask=None):
    if len(preds) != len(gt_answers):
      raise ValueError(f"{len(preds)} predictions but {len(gt_answers)} answer lists")
    a = np.array([100.0 * vqa_accuracy(p, g, self.revision) for p, g in zip(preds, gt_answers)])
    vals = {"accuracy": a}
    m = np.ones(len(a)) if mask is None else np.asarray(mask, np.float64)
    if answer_types is not None:
      types = np.asarray(answer_types)
      for t in sorted(set(answer_types)):
        # rows of other types enter with mask 0, so they do not count.
        self.acc.update({f"accuracy/{t}": a}, m * (types == t))
    self.acc.update(vals, m)

  def result(self) -> dict[str, float]:
    return self.acc.result()
