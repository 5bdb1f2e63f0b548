"""LaConv / LaConvNet (laconv.md): language encoder, SimOTA + box losses, procedural scenes,
datasets and the method on the loop (importing this package registers `laconv`, the
`laconvnet_vl` model, the `laconv_scenes` / `refcoco` / `vqa_v2` datasets and the
`laconv_vqa` evaluator).

The visual network (LaConv blocks, LaConvNet-S/B, REC/RES/VQA heads) is the zoo model
`jaxvision.models.laconvnet`.
"""
from jaxvision.methods.laconv import boxes, language, scenes, simota  # noqa: F401
from jaxvision.methods.laconv import config, data, model  # noqa: F401
from jaxvision.methods.laconv import method  # noqa: F401
