"""Datasets: embedded real data (offline), synthetic data, and tfds sources."""
from jaxvision.data import embedded, photos, tfds_sources  # noqa: F401  (registers datasets)
from jaxvision.data.base import DataNotReadyError, Dataset, Pipeline
from jaxvision.data.embedded import digits_arrays


def build(config) -> Dataset:
  """Builds the dataset named by config.dataset.name."""
  from jaxvision.core.registry import DATASETS
  return DATASETS.get(config.dataset.name)(config)


__all__ = ["DataNotReadyError", "Dataset", "Pipeline", "build", "digits_arrays"]
