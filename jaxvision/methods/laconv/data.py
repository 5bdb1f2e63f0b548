"""LaConv datasets: procedural scenes (`laconv_scenes`, the demo), RefCOCO/+/g (`refcoco`) and
VQA v2 (`vqa_v2`) from user-prepared files. The task comes from `config.laconv.task`.

Records (one schema per task; S = config.dataset.size, L = config.laconv.max_tokens):
  all:  image uint8 [S,S,3] (letterboxed: long side S, centre pad 127), tokens int32 [L]
        (expression or question, PAD 0), lb float32 [3] (scale, left, top of the letterbox)
  rec/res: box float32 [4] cxcywh canvas pixels, orig_box float32 [4] xyxy original pixels,
        valid float32 (0 when the box lies outside the image: no loss, never a crash),
        mask uint8 [S,S] (res only, canvas)
  vqa:  gt_answers int32 [10] answer ids (unknown answers -> id A = len(answers): never a
        target, decoded as '<unk>'), answer_type int32 (index into ANSWER_TYPES)
DataInfo extras: vocab (word -> id), vocab_size, answers (list), num_classes (= #answers),
  swap_ids (ids of 'left', 'right' for flips; -1 when absent), truncated (train texts cut).

RefCOCO layout under config.dataset.data_dir (the SimREC/LaConvNet one):
  anns/<refcoco|refcoco+|refcocog>.json  {"train": [{"iid", "bbox": [x,y,w,h], "refs": [..],
                                          "mask_id"}], "val": [..], "testA": [..], ...}
  images/train2014/COCO_train2014_<iid:012d>.jpg     masks/<name>/<mask_id>.npy (RES)
VQA v2 layout: vqa/<split>.json = [{"image": path under data_dir, "question", "answers":
  [10 strings], "answer_type"}] and vqa/answers.json (the answer list, 3129 for MCAN; the
  evaluator `laconv_vqa` reads the same file).
"""
from __future__ import annotations

import json
import os

import numpy as np

from jaxvision.core.method import DataInfo
from jaxvision.core.registry import DATASETS
from jaxvision.data.base import ArrayRecords, Dataset, DataNotReadyError
from jaxvision.methods.laconv import boxes as box_lib
from jaxvision.methods.laconv import scenes
from jaxvision.methods.laconv.language import WordTokenizer
from jaxvision.models.laconvnet import official_vocab

ANSWER_TYPES = ("yes/no", "number", "other")
UNK_ANSWER = "<unk>"


def _ds(config, key, default):
  d = config.dataset
  return d[key] if key in d else default


def _task(config) -> str:
  return str(config.laconv.task) if "laconv" in config else "rec"


def _swap_ids(tok: WordTokenizer) -> tuple[int, int]:
  return (tok.vocab.get("left", -1), tok.vocab.get("right", -1))


def _info(name, task, tr, ev, size, tok, answers, truncated, **extra):
  l = tok.max_len
  feats = {"image": ((size, size, 3), "uint8"), "tokens": ((l,), "int32"),
           "lb": ((3,), "float32")}
  if task in ("rec", "res"):
    feats.update({"box": ((4,), "float32"), "orig_box": ((4,), "float32"),
                  "valid": ((), "float32")})
  if task == "res":
    feats["mask"] = ((size, size), "uint8")
  if task == "vqa":
    feats.update({"gt_answers": ((10,), "int32"), "answer_type": ((), "int32")})
  return DataInfo(name, len(tr), len(ev), feats, vocab=tok.vocab, vocab_size=tok.vocab_size,
                  answers=list(answers), num_classes=max(1, len(answers)),
                  swap_ids=_swap_ids(tok), truncated=int(truncated), task=task, **extra)


def _scene_split(d, task, tok, answers):
  n = len(d["image"])
  texts = d["question"] if task == "vqa" else d["expression"]
  enc = tok.encode(texts)
  rec = {"image": d["image"], "tokens": enc.ids,
         "lb": np.tile(np.array([1.0, 0.0, 0.0], np.float32), (n, 1))}
  if task in ("rec", "res"):
    rec.update(box=box_lib.xyxy_to_cxcywh(d["box"]).astype(np.float32),
               orig_box=d["box"].astype(np.float32), valid=np.ones(n, np.float32))
  if task == "res":
    rec["mask"] = d["mask"]
  if task == "vqa":
    aid = {a: i for i, a in enumerate(answers)}
    rec["gt_answers"] = np.repeat(np.array([aid.get(a, len(answers)) for a in d["answer"]],
                                           np.int32)[:, None], 10, 1)
    rec["answer_type"] = np.array([ANSWER_TYPES.index(t) for t in d["answer_type"]], np.int32)
  return d, rec, enc.truncated


@DATASETS.register("laconv_scenes")
def laconv_scenes(config) -> Dataset:
  """Synthetic scenes on real photos (scenes.py): train and held-out eval scenes by seed."""
  task = _task(config)
  size = int(_ds(config, "size", 64))
  n_tr, n_ev = int(_ds(config, "num_train", 4000)), int(_ds(config, "num_eval", 500))
  seed = int(_ds(config, "data_seed", 0))
  max_len = int(config.laconv.max_tokens) if "laconv" in config else 15
  d_tr = scenes.generate(n_tr, seed, size)
  # One vocabulary for every scene task and training-set size, so that a REC run's checkpoint
  # initialises a VQA run (models.model.init, the demo's grounding pre-training): the words of
  # the first `vocab_scenes` training scenes (a prefix: generate(n) extends generate(m < n)).
  k = min(n_tr, int(_ds(config, "vocab_scenes", 4000)))
  tok = WordTokenizer.build(list(d_tr["expression"][:k]) + list(d_tr["question"][:k]),
                            max_len=max_len)
  answers = scenes.answer_vocab()
  _, tr, trunc = _scene_split(d_tr, task, tok, answers)
  _, ev, _ = _scene_split(scenes.generate(n_ev, seed + 100_003, size), task, tok, answers)
  info = _info("laconv_scenes", task, tr["image"], ev["image"], size, tok, answers, trunc)
  return Dataset(info, ArrayRecords(**tr), ArrayRecords(**ev), pp_train="to_float",
                 pp_eval="to_float")


# ------------------------------------------------------------------ user-prepared data


def _need(path, what):
  if not os.path.exists(path):
    raise DataNotReadyError(f"{what} not found at {path}; prepare it as described in "
                            "jaxvision/methods/laconv/data.py (set --config.dataset.data_dir).")
  return path


def _load_image(path):
  from PIL import Image  # noqa: PLC0415
  with Image.open(path) as im:
    return np.asarray(im.convert("RGB"), np.uint8)


class RefRecords:
  """Lazy RefCOCO records (one per referring sentence), letterboxed to `size`."""

  def __init__(self, root, name, items, size, tok, task):
    self.root, self.name, self.size, self.task = root, name, size, task
    self.rows = [(it, s) for it in items for s in it["refs"]]
    self.ids = tok.encode([s for _, s in self.rows]).ids

  def __len__(self):
    return len(self.rows)

  def __getitem__(self, i):
    it, _ = self.rows[i]
    img = _load_image(os.path.join(self.root, "images", "train2014",
                                   f"COCO_train2014_{int(it['iid']):012d}.jpg"))
    h, w = img.shape[:2]
    lb = box_lib.Letterbox.of(h, w, self.size)
    x, y, bw, bh = (float(v) for v in it["bbox"])
    orig, valid = box_lib.clip_boxes_xyxy(np.array([[x, y, x + bw, y + bh]]), h, w)
    canvas = lb.to_canvas(orig)[0]
    out = {"image": lb.apply_image(img, self.size), "tokens": self.ids[i],
           "lb": np.array([lb.scale, lb.left, lb.top], np.float32),
           "box": box_lib.xyxy_to_cxcywh(canvas).astype(np.float32),
           "orig_box": orig[0].astype(np.float32), "valid": np.float32(valid[0])}
    if self.task == "res":
      m = np.load(_need(os.path.join(self.root, "masks", self.name, f"{it['mask_id']}.npy"),
                        "RES mask")).astype(np.uint8)
      out["mask"] = (lb.apply_image(np.repeat(m[..., None] * 255, 3, -1), self.size, fill=0)
                     [..., 0] > 127).astype(np.uint8)
    return out


@DATASETS.register("refcoco")
def refcoco(config) -> Dataset:
  """RefCOCO / RefCOCO+ / RefCOCOg: dataset.ref_name, dataset.eval_split (val, testA, ...)."""
  task = _task(config)
  root = os.path.expanduser(str(config.dataset.data_dir))
  name = str(_ds(config, "ref_name", "refcoco"))
  size = int(_ds(config, "size", 416))
  with open(_need(os.path.join(root, "anns", f"{name}.json"), f"{name} annotations")) as f:
    anns = json.load(f)
  split = str(_ds(config, "eval_split", "val"))
  if split not in anns:
    raise ValueError(f"dataset.eval_split={split!r} is not in {name}.json (has {sorted(anns)}).")
  max_len = int(config.laconv.max_tokens)
  if bool(config.laconv.get("official_vocab", False)):  # ids an imported embedding expects
    tok = WordTokenizer(official_vocab([s for sp in anns for it in anns[sp] for s in it["refs"]]),
                        max_len)
  else:
    tok = WordTokenizer.build([s for it in anns["train"] for s in it["refs"]], max_len=max_len)
  tr = RefRecords(root, name, anns["train"], size, tok, task)
  ev = RefRecords(root, name, anns[split], size, tok, task)
  trunc = tok.encode([s for _, s in tr.rows]).truncated
  info = _info(name, task, tr, ev, size, tok, [], trunc, eval_split=split)
  return Dataset(info, tr, ev, pp_train="to_float", pp_eval="to_float")


class VqaRecords:
  def __init__(self, root, rows, size, tok, aid):
    self.root, self.rows, self.size, self.aid = root, rows, size, aid
    self.ids = tok.encode([r["question"] for r in rows]).ids

  def __len__(self):
    return len(self.rows)

  def __getitem__(self, i):
    from jaxvision.evaluators.vqa import normalize_answer  # noqa: PLC0415
    r = self.rows[i]
    img = _load_image(os.path.join(self.root, r["image"]))
    lb = box_lib.Letterbox.of(img.shape[0], img.shape[1], self.size)
    ans = [self.aid.get(normalize_answer(a), len(self.aid)) for a in r["answers"]][:10]
    ans += [len(self.aid)] * (10 - len(ans))
    t = r.get("answer_type", "other")
    return {"image": lb.apply_image(img, self.size), "tokens": self.ids[i],
            "lb": np.array([lb.scale, lb.left, lb.top], np.float32),
            "gt_answers": np.array(ans, np.int32),
            "answer_type": np.int32(ANSWER_TYPES.index(t) if t in ANSWER_TYPES else 2)}


@DATASETS.register("vqa_v2")
def vqa_v2(config) -> Dataset:
  """VQA v2 from vqa/<split>.json (+ vqa/answers.json); dataset.train_split / eval_split."""
  from jaxvision.evaluators.vqa import normalize_answer  # noqa: PLC0415
  root = os.path.expanduser(str(config.dataset.data_dir))
  def rows(split, what):
    with open(_need(os.path.join(root, "vqa", f"{split}.json"), what)) as f:
      return json.load(f)

  tr_rows = rows(_ds(config, "train_split", "train"), "VQA train questions")
  ev_rows = rows(_ds(config, "eval_split", "val"), "VQA eval questions")
  with open(_need(os.path.join(root, "vqa", "answers.json"), "VQA answer list (vqa/answers.json)")) as f:
    answers = [normalize_answer(a) for a in json.load(f)]
  aid = {a: i for i, a in enumerate(answers)}
  tok = WordTokenizer.build([r["question"] for r in tr_rows],
                            max_len=int(config.laconv.max_tokens))
  size = int(_ds(config, "size", 416))
  tr, ev = VqaRecords(root, tr_rows, size, tok, aid), VqaRecords(root, ev_rows, size, tok, aid)
  trunc = tok.encode([r["question"] for r in tr_rows]).truncated
  return Dataset(_info("vqa_v2", "vqa", tr, ev, size, tok, answers, trunc), tr, ev,
                 pp_train="to_float", pp_eval="to_float")
