"""Model selector: domain inference and the within-domain schedule (§2, §7).

`infer_domain` is DeepWisdom's rule: sequence_size == 1 -> tabular when
row == 1 or col == 1, else image; otherwise row == col == 1 -> text when the
channel vocabulary is non-empty, else speech; anything else -> video.
"""
from __future__ import annotations

DOMAINS = ("image", "video", "speech", "text", "tabular")


def infer_domain(metadata) -> str:
  row, col = metadata.get_matrix_size(0)
  if metadata.get_sequence_size() == 1:
    return "tabular" if row == 1 or col == 1 else "image"
  if row == 1 and col == 1:
    return "text" if len(metadata.get_channel_to_index_map()) > 0 else "speech"
  return "video"


def make_learner(domain: str, metadata, opts: dict):
  """The learner of `domain` (its schedule of models is in its own module)."""
  from jaxvision.autodl.solution import learners  # pylint: disable=g-import-not-at-top
  table = {"image": learners.ImageLearner, "video": learners.VideoLearner,
           "speech": learners.SpeechLearner, "text": learners.TextLearner,
           "tabular": learners.TabularLearner}
  if domain not in table:
    raise ValueError(f"unknown domain {domain!r}; one of {DOMAINS}")
  return table[domain](metadata, opts)
