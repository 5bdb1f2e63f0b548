"""AutoDL benchmark: time to the first prediction per modality, and reader throughput.

  python benchmarks/autodl_first_prediction.py --budget=30 --out=/tmp/autodl_bench.json

1. For each embedded demo dataset (one per modality by default) runs the protocol
   (`jaxvision.autodl.run`, ingestion in a child process) and prints the time of
   the first prediction after the clock starts, the number of predictions and the
   ALC. Model.__init__ (imports, compile warm-up) is not charged, as in the kit.
2. Reader throughput (examples/s) of `jaxvision.autodl.data` (tfrecord + protobuf,
   no TensorFlow) over each train split, against tf.data with the starting kit's
   parse (`tf.io.parse_single_sequence_example`) when TensorFlow is installed
   (skipped with a message otherwise).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from jaxvision.autodl import data, demo_data, run

PER_MODALITY = ("digits", "moving_digits", "sonified_digits", "docstrings", "breast_cancer")


def reader_throughput(split_dir: str) -> float:
  ds = data.AutoDLDataset(split_dir)
  t = time.perf_counter()
  n = sum(1 for _ in ds)
  return n / (time.perf_counter() - t)


def tf_throughput(split_dir: str):
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  md = data.AutoDLDataset(split_dir).get_metadata()
  row, col, ch = md.get_tensor_size()
  if md.is_compressed():
    seq = {"0_compressed": tf.io.VarLenFeature(tf.string)}
  else:
    seq = {"0_dense_input": tf.io.FixedLenSequenceFeature([row * col * ch], tf.float32)}
  ctx = {"label_index": tf.io.VarLenFeature(tf.int64),
         "label_score": tf.io.VarLenFeature(tf.float32)}

  def parse(rec):
    c, f = tf.io.parse_single_sequence_example(rec, context_features=ctx, sequence_features=seq)
    if md.is_compressed():
      x = tf.map_fn(lambda b: tf.image.convert_image_dtype(tf.image.decode_image(b, ch), tf.float32),
                    f["0_compressed"].values, fn_output_signature=tf.float32)
    else:
      x = tf.reshape(f["0_dense_input"], [-1, row, col, ch])
    return x, c["label_index"].values
  files = sorted(os.path.join(split_dir, f) for f in os.listdir(split_dir) if f.startswith("sample"))
  t = time.perf_counter()
  n = sum(1 for _ in tf.data.TFRecordDataset(files).map(parse))
  return n / (time.perf_counter() - t)


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--datasets", default=",".join(PER_MODALITY))
  p.add_argument("--budget", type=float, default=30.0)
  p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "autodl_bench"))
  p.add_argument("--out", default=None)
  a = p.parse_args()
  rows = []
  for name in filter(None, a.datasets.split(",")):
    ddir = os.path.join(a.workdir, "data", name)
    if not os.path.exists(os.path.join(ddir, f"{name}.solution")):
      demo_data.make_dataset(os.path.join(a.workdir, "data"), name, 0)
    split = os.path.join(ddir, f"{name}.data", "train")
    ours = reader_throughput(split)
    theirs = tf_throughput(split)
    res = run.run(ddir, os.path.join(a.workdir, "runs", name), time_budget=a.budget)
    first = res["timestamps"][0] if res["timestamps"] else float("nan")
    rows.append({"dataset": name, "domain": demo_data.DOMAIN[name], "first_prediction_s": first,
                 "num_predictions": res["num_predictions"], "alc": res["score"],
                 "reader_examples_per_s": ours, "tf_reader_examples_per_s": theirs})
    print(f"{name:16s} {demo_data.DOMAIN[name]:8s} first prediction {first:6.2f}s  "
          f"{res['num_predictions']:3d} predictions  ALC {res['score']:.4f}  reader {ours:8.1f} ex/s  "
          + (f"tf.data {theirs:8.1f} ex/s" if theirs else "tf.data: skipped (TensorFlow not installed)"))
  if a.out:
    with open(a.out, "w") as fh:
      json.dump({"budget": a.budget, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
  main()
