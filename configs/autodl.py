"""AutoDL: the challenge protocol and a modular any-modality solution
(Liu et al., TPAMI 2021; spec shared/papers/autodl.md).

AutoDL has its own time-budgeted driver, not the core loop (`jaxvision.main`):
  python -m jaxvision.autodl.demo --config=configs/autodl.py:demo --workdir=/tmp/autodl_demo
  python -m jaxvision.autodl.demo --config=configs/autodl.py:demo --config.time_budget=20 \\
      --config.num_seeds=3 --config.ablations=all --workdir=/tmp/autodl_demo
  python -m jaxvision.autodl.run --dataset_dir=DIR --code=jaxvision.autodl.solution \\
      --time_budget=1200            # one of your AutoDL datasets (e.g. Munster)
(`python -m jaxvision.main` is not used for this key.)

Variants (``:<variant>``):
  (default) paper protocol: T = 1200 s, t0 = 60 s, on `--config.dataset_dirs=DIR1,DIR2`
            (AutoDL-format folders you supply); full widths (image.width_multiplier 1).
  demo      the 7 embedded datasets of jaxvision.autodl.demo_data (digits image; breast
            cancer, wine, wine multilabel tabular; moving digits video; sonified digits
            speech; library docstrings text), T = 60 s per dataset, 3 seeds, the three §7
            ablations as extra participants; first, the offline meta-training of the image
            and video nets on install-shipped glyph tasks (jaxvision.autodl.meta_train,
            once per workdir, about 4.5 min on 2 CPU cores; config.meta_train=False skips
            it). Targets: no failure; ALC digits >= 0.75, breast cancer >= 0.85; each
            ablation lowers the mean ALC.
  smoke     two tiny datasets (wine, digits), T = 10 s, 1 seed, no ablation (CI).
"""
from jaxvision.autodl.config import VARIANTS, get_config  # noqa: F401  (the schema's variants)

USES_CORE_LOOP = False  # driven by jaxvision.autodl.demo / .run, not jaxvision.main
