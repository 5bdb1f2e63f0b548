"""LFPNet (Liu et al., ACM MM 2021): long-range feature propagating image matting.

Importing the package registers the Method 'lfpnet' (`method`: training with on-the-fly
composition, trimaps by erosion and the §4 losses; `config.defaults()` holds its options) and the
dataset 'comp1k_folder' (`data`). Pure parts: input encoding and trimap generation
(`encoding`), losses (`losses`), tiled full-resolution inference with TTA (`inference`, CLI
`predict`), receptive-field coverage (`coverage`), import of the released PyTorch checkpoint
(`torch_import`).
The model is `jaxvision.models.lfpnet.LFPNet` (zoo names 'lfpnet', 'lfpnet_tiny').
"""
from jaxvision.methods.lfpnet.encoding import (check_trimap, distance_encoding, encode,
                                               make_trimap, trimap_onehot)
from jaxvision.methods.lfpnet.inference import (TRANSFORMS, apply_transform, invert_transform,
                                                model_apply_fn, predict_alpha, predict_alpha_float,
                                                tent_weight, tile_grid)
from jaxvision.methods.lfpnet.losses import LossWeights, lfpnet_loss
from jaxvision.methods.lfpnet import method  # noqa: F401  (registers the 'lfpnet' method)

__all__ = [
    "check_trimap", "distance_encoding", "encode", "make_trimap", "trimap_onehot", "TRANSFORMS",
    "apply_transform", "invert_transform", "model_apply_fn", "predict_alpha",
    "predict_alpha_float", "tent_weight", "tile_grid", "LossWeights", "lfpnet_loss",
]
