"""jaxvision: ten computer-vision papers reimplemented in JAX/Flax."""
import setuptools

INSTALL_REQUIRES = [
    # Ranges admit jax 0.10.2 / Python 3.11 (CPU, CI) and jax 0.11.2 / Python 3.12 (GPU machine).
    "jax>=0.10.2,<0.12",
    "flax>=0.12.4,<0.13",
    "optax>=0.2.8,<0.3",
    "orbax-checkpoint>=0.12.4,<0.13",
    "chex>=0.1.92,<0.2",
    "ml-collections>=1.1,<1.2",
    "tensorflow-datasets>=4.9.10,<4.10",
    "grain>=0.2.18,<0.3",
    "pillow>=10",
    "importlib_resources>=6",
    "scikit-learn>=1.5",
    "scikit-image>=0.24",
    "scipy>=1.13",
    "numpy>=1.26",
    "tensorboardX>=2.6",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "absl-py>=2.1",
]

AUTODL = ["tfrecord>=1.14", "lightgbm>=4", "librosa>=0.10", "threadpoolctl>=3", "protobuf>=4.21",
          "h5py>=3.8"]

LACONV = ["tokenizers>=0.20"]  # word-level tokenizer for referring expressions / questions

EXTRAS = {
    "laconv": LACONV,
    # LFPNet demo's classical baselines (closed-form / KNN matting); pulls numba.
    "matting": ["pymatting>=1.1"],
    # AutoDL's learners and record format (TFRecord without TensorFlow, LightGBM, log-mel).
    "autodl": AUTODL,
    "test": ["pytest>=8", "pytest-xdist>=3.5", "nbclient>=0.10", "nbformat>=5.10",
             "ipykernel>=6.29"] + AUTODL + LACONV,
    # CI installs the CPU wheel explicitly: pip install torch==2.13.0
    "torch": ["torch>=2.9"],
}

setuptools.setup(
    name="jaxvision",
    version="0.1.0",
    description="JAX/Flax reimplementations of ten computer-vision papers",
    packages=setuptools.find_packages(include=["jaxvision", "jaxvision.*"]),
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["jaxvision=jaxvision.main:run"]},
)
