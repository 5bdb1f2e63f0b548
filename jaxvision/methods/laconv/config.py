"""Every option of the LaConv method (config.laconv), with its default."""
import ml_collections

TASKS = ("rec", "res", "vqa")
CONVS = ("laconv", "static")


def defaults() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "task": "rec",            # rec | res | vqa (sets the model head)
      "conv": "laconv",         # laconv | static (baseline: static convs + late fusion)
      "impl": "auto",           # dynamic_conv implementation: auto | xla | pallas
      "grad_clip": 0.15,        # global-norm clip (official 0.15; 0 = off)
      "ema_decay": 0.9997,      # EMA of weights used for evaluation (0 = evaluate the raw model)
      "flip": True,             # horizontal flip p=0.5 with 'left' <-> 'right' swapped in text
      "iou_type": "iou",        # REC box loss: iou (1 - IoU^2, official) | giou
      "glove_path": "",         # GloVe text file for the word embedding ('' = random N(0,1))
      "official_vocab": False,  # RefCOCO token ids as the official code (for imported weights)
      "max_tokens": 15,         # words per expression / question (longer ones are truncated)
      "vqa_score": "mcan",      # VQA soft scores: mcan (0/.3/.6/.9/1) | linear (min(n/3, 1))
  })
