"""The AutoDL dataset format, read and written without TensorFlow (autodl.md §2).

Layout (one dataset):
  <dir>/<name>.data/{train,test}/metadata.textproto
  <dir>/<name>.data/{train,test}/sample-<name>-{train,test}.tfrecord
  <dir>/<name>.solution            n_test x output_dim text matrix (0/1)
  <dir>/<name>_public.info         optional (domain, sample_num, label_num)

Libraries: records are framed and written with the `tfrecord` package (PyPI
`tfrecord`: `tfrecord.reader.tfrecord_iterator`, `tfrecord.writer.TFRecordWriter`)
and decoded with its bundled `tf.train.SequenceExample` protobuf classes
(`tfrecord.example_pb2`); `metadata.textproto` is parsed and printed by
`google.protobuf.text_format` against the kit's `DataSpecification` message,
which is built here at import time from a descriptor (the kit's data.proto,
plus `channel_to_index_map` = field 8, added by later kit versions).

Record = SequenceExample: context `id` (int64), `label_index` (int64 list),
`label_score` (float list; both empty in the test set); feature lists
`0_dense_input` (one float list of row*col*ch values per step), `0_compressed`
(one PNG/JPEG per step) or `0_sparse_{row,col[,channel]}_index` + `0_sparse_value`.
Parsed example: x [T, row, col, ch] float32 (compressed frames in [0, 1]),
y [output_dim] float32.
"""
from __future__ import annotations

import glob
import io
import os
import sys
from typing import Iterator, Mapping, Sequence

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

FORMATS = ("dense", "sparse", "png", "jpeg")


class AutoDLFormatError(ValueError):
  """A dataset directory or record that does not follow the AutoDL layout."""


# ------------------------------------------------------------------ metadata proto
def _build_spec_classes():
  """DataSpecification / MatrixSpec message classes (autodl.data.proto, proto2)."""
  f = descriptor_pb2.FieldDescriptorProto
  fdp = descriptor_pb2.FileDescriptorProto(name="jaxvision_autodl_data.proto",
                                           package="autodl", syntax="proto2")
  ms = fdp.message_type.add(name="MatrixSpec")
  fmt = ms.enum_type.add(name="Format")
  for i, n in enumerate(("DENSE", "SPARSE", "COMPRESSED")):
    fmt.value.add(name=n, number=i)
  for name, num, typ in (("col_count", 1, f.TYPE_INT32), ("row_count", 2, f.TYPE_INT32),
                         ("is_sequence_col", 3, f.TYPE_BOOL), ("is_sequence_row", 4, f.TYPE_BOOL),
                         ("has_locality_col", 5, f.TYPE_BOOL),
                         ("has_locality_row", 6, f.TYPE_BOOL), ("is_sparse", 7, f.TYPE_BOOL)):
    ms.field.add(name=name, number=num, type=typ, label=f.LABEL_OPTIONAL)
  ms.field.add(name="format", number=8, type=f.TYPE_ENUM, type_name=".autodl.MatrixSpec.Format",
               label=f.LABEL_OPTIONAL, default_value="DENSE")
  ms.field.add(name="num_channels", number=9, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL,
               default_value="-1")
  ds = fdp.message_type.add(name="DataSpecification")
  ds.field.add(name="matrix_spec", number=1, type=f.TYPE_MESSAGE,
               type_name=".autodl.MatrixSpec", label=f.LABEL_REPEATED)
  ds.field.add(name="is_sequence", number=2, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL)
  ds.field.add(name="output_dim", number=3, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
  ds.field.add(name="sequence_size", number=6, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL,
               default_value="1")
  ds.field.add(name="sample_count", number=7, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
  for name, num, entry in (("label_to_index_map", 4, "LabelToIndexMapEntry"),
                           ("feature_to_index_map", 5, "FeatureToIndexMapEntry"),
                           ("channel_to_index_map", 8, "ChannelToIndexMapEntry")):
    e = ds.nested_type.add(name=entry)
    e.options.map_entry = True
    e.field.add(name="key", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    e.field.add(name="value", number=2, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    ds.field.add(name=name, number=num, type=f.TYPE_MESSAGE,
                 type_name=f".autodl.DataSpecification.{entry}", label=f.LABEL_REPEATED)
  pool = descriptor_pool.DescriptorPool()
  pool.Add(fdp)
  get = message_factory.GetMessageClass
  return (get(pool.FindMessageTypeByName("autodl.DataSpecification")),
          get(pool.FindMessageTypeByName("autodl.MatrixSpec")))


DataSpecification, MatrixSpec = _build_spec_classes()


class AutoDLMetadata:
  """The kit's metadata API over one `metadata.textproto` (train or test)."""

  def __init__(self, path_or_dir: str, dataset_name: str | None = None):
    path = (os.path.join(path_or_dir, "metadata.textproto") if os.path.isdir(path_or_dir)
            else path_or_dir)
    if not os.path.exists(path):
      raise AutoDLFormatError(f"missing metadata file {path}; every split folder needs "
                              "metadata.textproto")
    self.metadata_ = DataSpecification()
    with open(path) as fh:
      try:
        text_format.Merge(fh.read(), self.metadata_)
      except text_format.ParseError as e:
        raise AutoDLFormatError(f"bad metadata {path}: {e}") from e
    if not self.metadata_.matrix_spec:
      raise AutoDLFormatError(f"metadata {path} has no matrix_spec")
    self.dataset_name_ = dataset_name or os.path.basename(os.path.dirname(os.path.abspath(path)))

  @classmethod
  def from_proto(cls, spec, dataset_name: str = "") -> "AutoDLMetadata":
    obj = cls.__new__(cls)
    obj.metadata_, obj.dataset_name_ = spec, dataset_name
    return obj

  def get_dataset_name(self) -> str:
    return self.dataset_name_

  def is_compressed(self, bundle_index: int = 0) -> bool:
    return self.metadata_.matrix_spec[bundle_index].format == MatrixSpec.COMPRESSED

  def is_sparse(self, bundle_index: int = 0) -> bool:
    return self.metadata_.matrix_spec[bundle_index].format == MatrixSpec.SPARSE

  def get_bundle_size(self) -> int:
    return len(self.metadata_.matrix_spec)

  def get_matrix_size(self, bundle_index: int = 0) -> tuple[int, int]:
    m = self.metadata_.matrix_spec[bundle_index]
    return m.row_count, m.col_count

  def get_num_channels(self, bundle_index: int = 0) -> int:
    c = self.metadata_.matrix_spec[bundle_index].num_channels
    if c == -1:
      return 3 if self.is_compressed(bundle_index) else 1
    return c

  def get_tensor_size(self, bundle_index: int = 0) -> tuple[int, int, int]:
    return (*self.get_matrix_size(bundle_index), self.get_num_channels(bundle_index))

  def get_tensor_shape(self, bundle_index: int = 0) -> tuple[int, int, int, int]:
    return (self.get_sequence_size(), *self.get_tensor_size(bundle_index))

  def get_sequence_size(self) -> int:
    return self.metadata_.sequence_size

  def get_output_size(self) -> int:
    return self.metadata_.output_dim

  def size(self) -> int:
    return self.metadata_.sample_count

  def get_label_to_index_map(self) -> dict[str, int]:
    return dict(self.metadata_.label_to_index_map)

  def get_feature_to_index_map(self) -> dict[str, int]:
    return dict(self.metadata_.feature_to_index_map)

  def get_channel_to_index_map(self) -> dict[str, int]:
    return dict(self.metadata_.channel_to_index_map)

  def to_text(self) -> str:
    return text_format.MessageToString(self.metadata_)


def tfrecord_lib():
  """Imports the `tfrecord` package without its optional torch Dataset: its
  `__init__` imports torch when installed (seconds), which the AutoDL reader never
  uses. Returns the package (reader, writer, example_pb2)."""
  if "tfrecord" not in sys.modules:
    block = "tfrecord.torch" not in sys.modules
    if block:
      sys.modules["tfrecord.torch"] = None  # makes its `try: from tfrecord import torch` skip
    try:
      import tfrecord  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("the AutoDL reader needs the `tfrecord` package: pip install "
                        "'jaxvision[autodl]' (or pip install tfrecord)") from e
    finally:
      if block:
        del sys.modules["tfrecord.torch"]
  import tfrecord.example_pb2  # pylint: disable=g-import-not-at-top,unused-import
  import tfrecord.reader  # pylint: disable=g-import-not-at-top,unused-import
  import tfrecord.writer  # pylint: disable=g-import-not-at-top,unused-import
  return sys.modules["tfrecord"]


# ------------------------------------------------------------------ frames
def encode_frame(frame: np.ndarray, fmt: str, quality: int = 95) -> bytes:
  """frame [H, W, C] float in [0, 1] (C = 1 or 3) -> PNG/JPEG bytes (8-bit)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  f = np.asarray(frame)
  if f.ndim != 3 or f.shape[-1] not in (1, 3):
    raise ValueError(f"compressed frames must be [H, W, 1|3], got {f.shape}")
  u8 = np.clip(np.round(f.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
  img = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)
  buf = io.BytesIO()
  if fmt == "png":
    img.save(buf, format="PNG")
  elif fmt == "jpeg":
    img.save(buf, format="JPEG", quality=quality)
  else:
    raise ValueError(f"unknown frame encoding {fmt!r}; use 'png' or 'jpeg'")
  return buf.getvalue()


def decode_frame(data: bytes, num_channels: int) -> np.ndarray:
  """PNG/JPEG bytes -> [H, W, num_channels] float32 in [0, 1]."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  img = Image.open(io.BytesIO(bytes(data)))
  img = img.convert("L" if num_channels == 1 else "RGB")
  a = np.asarray(img, np.float32) / 255.0
  return a[..., None] if a.ndim == 2 else a


# ------------------------------------------------------------------ records
def _feature_values(feature) -> list:
  kind = feature.WhichOneof("kind")
  return list(getattr(feature, kind).value) if kind else []


def parse_sequence_example(record: bytes, metadata: AutoDLMetadata) -> tuple[np.ndarray, np.ndarray]:
  """One serialized SequenceExample -> (x [T, row, col, ch] float32, y [K] float32)."""
  ex = tfrecord_lib().example_pb2.SequenceExample()
  ex.ParseFromString(bytes(record))
  ctx, fl = ex.context.feature, ex.feature_lists.feature_list
  k = metadata.get_output_size()
  y = np.zeros((k,), np.float32)
  idx = np.asarray(_feature_values(ctx["label_index"]) if "label_index" in ctx else [], np.int64)
  score = np.asarray(_feature_values(ctx["label_score"]) if "label_score" in ctx else [],
                     np.float32)
  if idx.size:
    if score.size != idx.size:
      score = np.ones(idx.shape, np.float32)
    if idx.min() < 0 or idx.max() >= k:
      raise AutoDLFormatError(f"label_index {idx.tolist()} outside [0, {k})")
    y[idx] = score
  row, col, ch = metadata.get_tensor_size(0)
  if "0_dense_input" in fl:
    if row <= 0 or col <= 0:
      raise AutoDLFormatError(f"dense tensors need a known matrix size, got {(row, col)}")
    feats = fl["0_dense_input"].feature
    size = row * col * ch
    # One flat pass (speech/text hold one value per step: thousands of steps).
    if size == 1:
      flat = np.array([f.float_list.value[0] if f.float_list.value else np.nan for f in feats],
                      np.float32)
    else:
      flat = np.fromiter((v for f in feats for v in f.float_list.value), np.float32)
    if flat.size != len(feats) * size:
      raise AutoDLFormatError(f"dense steps hold {flat.size} values for {len(feats)} steps; "
                              f"metadata says {row}x{col}x{ch} = {size} per step")
    x = flat.reshape(len(feats), row, col, ch)
  elif "0_compressed" in fl:
    frames = [decode_frame(_feature_values(f)[0], ch) for f in fl["0_compressed"].feature]
    for fr in frames:
      if (row > 0 and fr.shape[0] != row) or (col > 0 and fr.shape[1] != col):
        raise AutoDLFormatError(f"a frame of shape {fr.shape[:2]} disagrees with the metadata "
                                f"matrix size {(row, col)}")
    if len({fr.shape for fr in frames}) > 1:
      raise AutoDLFormatError("frames of one example differ in size")
    x = np.stack(frames)
  elif "0_sparse_value" in fl:
    if row <= 0 or col <= 0:
      raise AutoDLFormatError(f"sparse tensors need a known matrix size, got {(row, col)}")
    vals = fl["0_sparse_value"].feature
    rows, cols = fl["0_sparse_row_index"].feature, fl["0_sparse_col_index"].feature
    chans = fl["0_sparse_channel_index"].feature if "0_sparse_channel_index" in fl else None
    x = np.zeros((len(vals), row, col, ch), np.float32)
    for t in range(len(vals)):
      r = np.asarray(_feature_values(rows[t]), np.int64)
      c = np.asarray(_feature_values(cols[t]), np.int64)
      h = (np.asarray(_feature_values(chans[t]), np.int64) if chans is not None
           else np.zeros_like(r))
      x[t, r, c, h] = np.asarray(_feature_values(vals[t]), np.float32)
  else:
    raise AutoDLFormatError(f"record has none of 0_dense_input / 0_compressed / 0_sparse_value "
                            f"(feature lists: {sorted(fl.keys())})")
  seq = metadata.get_sequence_size()
  if seq > 0 and x.shape[0] != seq:
    raise AutoDLFormatError(f"an example has {x.shape[0]} steps; metadata sequence_size={seq}")
  return x, y


class AutoDLDataset:
  """One split folder (`<name>.data/train` or `.../test`).

  `get_dataset()` returns a re-iterable of (x [T, row, col, ch] float32,
  y [K] float32) in file order (the stand-in for the kit's tf.data.Dataset);
  `get_metadata()` returns the AutoDLMetadata; `len()` is the record count.
  """

  def __init__(self, split_dir: str):
    if not os.path.isdir(split_dir):
      raise AutoDLFormatError(f"split folder {split_dir} does not exist")
    name = os.path.basename(os.path.dirname(os.path.abspath(split_dir))).removesuffix(".data")
    self.metadata_ = AutoDLMetadata(split_dir, dataset_name=name)
    self.files = sorted(glob.glob(os.path.join(split_dir, "sample*")))
    if not self.files:
      raise AutoDLFormatError(f"no sample*.tfrecord file in {split_dir}")

  def get_metadata(self) -> AutoDLMetadata:
    return self.metadata_

  def records(self) -> Iterator[memoryview]:
    reader = tfrecord_lib().reader
    for path in self.files:
      for rec in reader.tfrecord_iterator(path):
        yield bytes(rec)

  def __iter__(self):
    for rec in self.records():
      yield parse_sequence_example(rec, self.metadata_)

  def get_dataset(self) -> "AutoDLDataset":
    return self

  def __len__(self) -> int:
    return self.metadata_.size()


def find_data_dir(dataset_dir: str) -> tuple[str, str]:
  """dataset_dir holding exactly one `<name>.data` -> (name, path of the .data folder)."""
  if not os.path.isdir(dataset_dir):
    raise AutoDLFormatError(f"dataset_dir {dataset_dir} does not exist")
  found = sorted(d for d in os.listdir(dataset_dir) if d.endswith(".data")
                 and os.path.isdir(os.path.join(dataset_dir, d)))
  if len(found) != 1:
    raise AutoDLFormatError(f"{dataset_dir} must hold exactly one <name>.data folder, found "
                            f"{found or 'none'}")
  return found[0][:-5], os.path.join(dataset_dir, found[0])


def load_solution(dataset_dir: str) -> np.ndarray:
  """The `<name>.solution` matrix beside the .data folder -> [n_test, K] float64."""
  name, _ = find_data_dir(dataset_dir)
  path = os.path.join(dataset_dir, f"{name}.solution")
  if not os.path.exists(path):
    raise AutoDLFormatError(f"missing solution file {path}")
  return np.loadtxt(path, ndmin=2)


def read_split(dataset_dir: str, split: str) -> AutoDLDataset:
  _, data = find_data_dir(dataset_dir)
  return AutoDLDataset(os.path.join(data, split))


# ------------------------------------------------------------------ writer
def _record(x: np.ndarray, y: np.ndarray | None, idx: int, fmt: str, quality: int):
  context = {"id": (idx, "int")}
  if y is None:
    context["label_index"], context["label_score"] = ([], "int"), ([], "float")
  else:
    nz = np.flatnonzero(y)
    context["label_index"] = (nz.astype(np.int64).tolist(), "int")
    context["label_score"] = (np.asarray(y)[nz].astype(np.float32).tolist(), "float")
  if fmt == "dense":
    seq = {"0_dense_input": ([s.ravel().astype(np.float32).tolist() for s in x], "float")}
  elif fmt == "sparse":
    parts = [np.nonzero(s) for s in x]
    seq = {"0_sparse_row_index": ([p[0].tolist() for p in parts], "int"),
           "0_sparse_col_index": ([p[1].tolist() for p in parts], "int"),
           "0_sparse_channel_index": ([p[2].tolist() for p in parts], "int"),
           "0_sparse_value": ([s[p].astype(np.float32).tolist() for s, p in zip(x, parts)],
                              "float")}
  else:
    seq = {"0_compressed": ([encode_frame(s, fmt, quality) for s in x], "byte")}
  return context, seq


def make_metadata(*, sample_count: int, output_dim: int, sequence_size: int, row_count: int,
                  col_count: int, num_channels: int, fmt: str = "dense",
                  label_names: Sequence[str] | None = None,
                  channel_to_index_map: Mapping[str, int] | None = None,
                  dataset_name: str = "") -> AutoDLMetadata:
  if fmt not in FORMATS:
    raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
  spec = DataSpecification(is_sequence=sequence_size != 1, output_dim=output_dim,
                           sequence_size=sequence_size, sample_count=sample_count)
  spec.matrix_spec.add(
      row_count=row_count, col_count=col_count, num_channels=num_channels,
      is_sequence_row=False, is_sequence_col=False, has_locality_row=row_count > 1,
      has_locality_col=col_count > 1,
      format={"dense": MatrixSpec.DENSE, "sparse": MatrixSpec.SPARSE}.get(fmt,
                                                                          MatrixSpec.COMPRESSED))
  for i, n in enumerate(label_names or ()):
    spec.label_to_index_map[str(n)] = i
  for k, v in (channel_to_index_map or {}).items():
    spec.channel_to_index_map[str(k)] = int(v)
  return AutoDLMetadata.from_proto(spec, dataset_name)


def write_dataset(dataset_dir: str, name: str, train: tuple[Sequence[np.ndarray], np.ndarray],
                  test: tuple[Sequence[np.ndarray], np.ndarray], *, fmt: str = "dense",
                  label_names: Sequence[str] | None = None,
                  channel_to_index_map: Mapping[str, int] | None = None,
                  domain: str | None = None, jpeg_quality: int = 95) -> str:
  """Writes one AutoDL dataset; returns dataset_dir.

  train/test: (xs, ys) with xs a sequence of [T, H, W, C] arrays (T, H, W may
  vary; compressed frames are floats in [0, 1], quantised to 8 bits) and ys an
  [n, K] array of label scores (0/1). The test labels go to `<name>.solution`
  and are left out of the test records. Metadata sizes are -1 where examples
  differ.
  """
  if fmt not in FORMATS:
    raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
  TFRecordWriter = tfrecord_lib().writer.TFRecordWriter  # pylint: disable=invalid-name
  ys_test = np.asarray(test[1])
  k = ys_test.shape[1]
  all_x = [np.asarray(x) for x in list(train[0]) + list(test[0])]
  for x in all_x:
    if x.ndim != 4:
      raise ValueError(f"every example must be a 4-D [T, H, W, C] array, got {x.shape}")
  size = lambda i: (all_x[0].shape[i] if len({x.shape[i] for x in all_x}) == 1 else -1)
  seq, row, col, ch = size(0), size(1), size(2), size(3)
  if ch == -1:
    raise ValueError("all examples must have the same number of channels")
  if fmt in ("dense", "sparse") and (row == -1 or col == -1):
    raise ValueError("dense/sparse examples need one (H, W); use fmt='png'|'jpeg' for "
                     "variable-size frames")
  data = os.path.join(dataset_dir, f"{name}.data")
  for split, (xs, ys) in (("train", train), ("test", test)):
    ys = np.asarray(ys)
    if ys.shape != (len(xs), k):
      raise ValueError(f"{split} labels must be [{len(xs)}, {k}], got {ys.shape}")
    d = os.path.join(data, split)
    os.makedirs(d, exist_ok=True)
    md = make_metadata(sample_count=len(xs), output_dim=k, sequence_size=seq, row_count=row,
                       col_count=col, num_channels=ch, fmt=fmt, label_names=label_names,
                       channel_to_index_map=channel_to_index_map, dataset_name=name)
    with open(os.path.join(d, "metadata.textproto"), "w") as fh:
      fh.write(md.to_text())
    w = TFRecordWriter(os.path.join(d, f"sample-{name}-{split}.tfrecord"))
    try:
      for i, (x, y) in enumerate(zip(xs, ys)):
        w.write(*_record(np.asarray(x, np.float32), y if split == "train" else None, i, fmt,
                         jpeg_quality))
    finally:
      w.close()
  np.savetxt(os.path.join(dataset_dir, f"{name}.solution"), ys_test, fmt="%g")
  with open(os.path.join(dataset_dir, f"{name}_public.info"), "w") as fh:
    fh.write(f"domain = '{domain or ''}'\nsample_num = {len(train[0])}\nlabel_num = {k}\n")
  return dataset_dir
