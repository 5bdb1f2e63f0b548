"""jaxvision.quant: quantizer specs, fake quantization (STE), injection, calibration, export.

Reusable in any NNX model built from `nnx.Conv` / `nnx.Linear`:

    from jaxvision import quant
    quant.quantize_model(model, quant.uniform_rules(4), sample_input=x[:1])
    quant.calibrate(model, [x])
    int_model = quant.to_integer_model(model)
"""
from jaxvision.quant.ops import (channel_minmax, dequantize, fake_quant,
                                        fake_quant_reference, qparams, quantize)
from jaxvision.quant.layers import (ActQuantizer, IntegerLayer, QuantCount, QuantInt, QuantLayer,
                                    QuantRange, QuantState, WeightQuantOp)
from jaxvision.quant.model import (calibrate, call_order, dequantize_model, export_integers,
                                   find_modules, make_calibration_step, model_size_bits,
                                   quant_layers, quantize_model, replace_module, replace_modules,
                                   reset_ranges, set_calibrating, to_integer_model)
from jaxvision.quant.spec import (QuantRule, QuantSpec, act_spec, match_rule, uniform_rules,
                                  weight_spec)

__all__ = [
    "ActQuantizer", "IntegerLayer", "QuantCount", "QuantInt", "QuantLayer", "QuantRange",
    "QuantRule", "QuantSpec", "QuantState", "WeightQuantOp", "act_spec", "calibrate",
    "call_order", "channel_minmax", "dequantize", "dequantize_model", "export_integers",
    "fake_quant", "fake_quant_reference", "find_modules", "make_calibration_step", "match_rule",
    "model_size_bits", "qparams", "quant_layers", "quantize", "quantize_model", "replace_module",
    "replace_modules", "reset_ranges", "set_calibrating", "to_integer_model", "uniform_rules",
    "weight_spec",
]
