"""FLOPs / params counter: paper baselines, analytic counts for arbitrary widths, CLI."""
import json

import pytest
from flax import nnx

from jaxvision import flops, models

# (model, kwargs, paper FLOPs (M, thop), paper params (M)), CLR-RNF README.
BASELINES = [
    ("vgg16", {}, 314.04, 14.73),
    ("resnet56", {}, 126.56, 0.85),
    ("resnet110", {}, 254.99, 1.73),
    ("googlenet", {}, 1529.43, 6.17),
    ("resnet50", {"num_classes": 1000}, 4113.56, 25.56),
]


@pytest.mark.parametrize("name, kw, fl, par", BASELINES)
def test_paper_baselines(name, kw, fl, par):
  r = flops.count(name, **kw)
  assert abs(r["flops"] / 1e6 - fl) / fl < 1e-3
  assert abs(r["params"] / 1e6 - par) < 0.005 + 1e-9  # reported with 2 decimals


def test_pytorchcv_param_counts_exact():
  # pytorchcv's own asserted parameter counts for mobilenet_w1 / mobilenetv2_w1.
  assert flops.count("mobilenet_v1")["params"] == 4231976
  assert flops.count("mobilenet_v2")["params"] == 3504960
  assert flops.count("resnet50")["params"] == 25557032  # torchvision resnet50


def _vgg_analytic(widths, nc=10):
  macs = flops_thop = params = 0
  cin, hw = 3, 32
  for i, w in enumerate(widths):
    out = hw * hw * w
    macs += out * 9 * cin
    flops_thop += out * (9 * cin + 1) + 2 * out
    params += 9 * cin * w + w + 2 * w
    cin = w
    if i in (1, 3, 6, 9, 12):
      hw //= 2
  macs += cin * nc
  flops_thop += cin * nc
  params += cin * nc + nc
  return macs, flops_thop, params


def _resnet_cifar_analytic(inner, stage=(16, 32, 64), nc=10):
  n = len(inner) // 3
  hw, cin = 32, stage[0]
  macs = hw * hw * 16 * 27
  thop = macs + 2 * hw * hw * 16
  params = 27 * 16 + 32
  for s in range(3):
    for b in range(n):
      if s > 0 and b == 0:
        hw //= 2
      w = inner[s * n + b]
      c1, c2 = hw * hw * w * 9 * cin, hw * hw * stage[s] * 9 * w
      macs += c1 + c2
      thop += c1 + c2 + 2 * hw * hw * (w + stage[s])
      params += 9 * cin * w + 9 * w * stage[s] + 2 * (w + stage[s])
      cin = stage[s]
  macs += 64 * nc
  thop += 64 * nc
  params += 64 * nc + nc
  return macs, thop, params


@pytest.mark.parametrize("widths", [None, [32, 17, 100, 3, 256, 200, 5, 512, 1, 64, 64, 7, 33]])
def test_vgg_counts_match_analytic(widths):
  w = widths or models.default_widths("vgg16")
  macs, thop, params = _vgg_analytic(w)
  r = flops.count("vgg16", widths=widths)
  assert (r["flops"], r["params"]) == (thop, params)
  assert flops.count("vgg16", widths=widths, convention="macs")["flops"] == macs


def test_pruned_resnet56_counts_match_analytic():
  inner = [3, 16, 9, 1, 16, 12, 5, 8, 16, 32, 20, 1, 30, 32, 2, 17, 9, 32, 64, 61, 5, 40, 64, 3,
           22, 64, 10]
  macs, thop, params = _resnet_cifar_analytic(inner)
  r = flops.count("resnet56", widths=inner)
  assert (r["flops"], r["params"], r["macs"]) == (thop, params, macs)


def test_count_on_instance_and_layer_names_are_param_paths():
  m = models.build("resnet20", 10, rngs=nnx.Rngs(0), width_multiplier=0.5, shortcut="B")
  r = flops.count(m)
  flat = {"/".join(map(str, k)) for k, _ in nnx.to_flat_state(nnx.state(m, nnx.Param))}
  convs = [l for l in r["layers"] if l["kind"] in ("conv", "linear")]
  assert all(f"{l['name']}/kernel" in flat for l in convs)
  assert r["layers"][0]["name"] == "conv1" and r["layers"][-1]["name"] == "fc"
  assert sum(l["flops"] for l in r["layers"]) == r["flops"]
  # BN: exactly 2 ops per output element in the thop convention, 0 MACs.
  bn = next(l for l in r["layers"] if l["kind"] == "batchnorm")
  assert bn["flops"] == 2 * 16 * 32 * 32 // 2 and bn["macs"] == 0
  with pytest.raises(ValueError, match="convention"):
    flops.count(m, convention="fvcore")


def test_cli_json(capsys):
  # The CLI's main() in this process (`python -m jaxvision.flops` only adds sys.exit(main()));
  # a subprocess would import jax once more.
  assert flops.main(["--model=resnet20", "--widths=" + ",".join(["8"] * 9), "--num-classes=100",
                     "--json"]) == 0
  res = json.loads(capsys.readouterr().out)
  _, thop, params = _resnet_cifar_analytic([8] * 9 + [], nc=100) if False else (0, 0, 0)
  r = flops.count("resnet20", widths=[8] * 9, num_classes=100)
  assert res["flops"] == r["flops"] and res["params"] == r["params"]
  assert res["layers"][-1]["out_shape"] == [1, 100]


def test_cli_user_errors_are_one_line(capsys):
  from jaxvision import flops
  for argv, msg in ((["--model=cnn_small", "--num-classes=0"], "num_classes=0"),
                    (["--model=cnn_small", "--input-shape=0,32,3"], "dimension < 1"),
                    (["--model=no_such_model"], "unknown model"),
                    (["--model=cnn_small", "--input-shape=abc"], "invalid literal")):
    assert flops.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1, err
