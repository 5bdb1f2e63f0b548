"""A small PyTorch LFPNet written from the spec (lfpnet.md §2.3-2.6), NCHW, batch 1 like the
official code, with its module names (so its state_dict has the official keys, shared layers
twice). Widths follow jaxvision.models.lfpnet's widths list; used only by the import test."""
import torch
import torch.nn.functional as F
from torch import nn

from jaxvision.models.lfpnet import WIDTH_NAMES, gn_groups


def gn(c, g):
  return nn.GroupNorm(gn_groups(c, g), c)


class WSConv(nn.Conv2d):
  def forward(self, x):
    w = self.weight
    w = w - w.mean(dim=(1, 2, 3), keepdim=True)
    std = w.flatten(1).std(dim=1).view(-1, 1, 1, 1) + 1e-5
    return F.conv2d(x, w / std, self.bias, self.stride, self.padding, self.dilation)


class Bottle(nn.Module):
  def __init__(self, cin, planes, stride, dil):
    super().__init__()
    self.conv1, self.bn1 = WSConv(cin, planes, 1, bias=False), gn(planes, 32)
    self.conv2 = WSConv(planes, planes, 3, stride, padding=dil, dilation=dil, bias=False)
    self.bn2 = gn(planes, 32)
    self.conv3, self.bn3 = WSConv(planes, planes * 4, 1, bias=False), gn(planes * 4, 32)
    self.downsample = None
    if stride != 1 or cin != planes * 4:
      self.downsample = nn.Sequential(WSConv(cin, planes * 4, 1, stride, bias=False),
                                      gn(planes * 4, 32))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = F.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Backbone(nn.Module):
  def __init__(self, cin, base, blocks):
    super().__init__()
    self.conv1, self.bn1 = WSConv(cin, base, 7, 2, 3, bias=False), gn(base, 32)
    c = base
    for s, (n, st, dil) in enumerate(zip(blocks, (1, 2, 1, 1), (1, 1, 2, 4))):
      mods = []
      for b in range(n):
        mods.append(Bottle(c, base * 2 ** s, st if b == 0 else 1, dil))
        c = base * 2 ** s * 4
      setattr(self, f"layer{s + 1}", nn.Sequential(*mods))


def cgn(cin, cout, k, g, act, stride=1, dil=1, bias=True):
  mods = [WSConv(cin, cout, k, stride, padding=dil * (k // 2), dilation=dil, bias=bias),
          gn(cout, g)]
  if act == "relu":
    mods.append(nn.ReLU())
  elif act == "lrelu":
    mods.append(nn.LeakyReLU())
  return nn.Sequential(*mods)


class CBR(nn.Module):  # aspp branch: .conv, .bn.gn
  def __init__(self, cin, cout, k, dil, bias):
    super().__init__()
    self.conv = WSConv(cin, cout, k, 1, padding=dil * (k // 2), dilation=dil, bias=bias)
    self.bn = nn.Module()
    self.bn.gn = gn(cout, 32)

  def forward(self, x):
    return F.relu(self.bn.gn(self.conv(x)))


class Pool(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.conv = CBR(cin, cout, 1, 1, False)

  def forward(self, x):
    return self.conv(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, x.shape[2], x.shape[3])


class GNs(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.gn = gn(c, 32)

  def forward(self, x):
    return self.gn(x)


class Basic(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.conv1 = WSConv(c, c, 3, padding=1)
    self.prelu1 = nn.Sequential(GNs(c), nn.LeakyReLU())
    self.conv2 = nn.Sequential(WSConv(c, c, 3, padding=1), GNs(c))

  def forward(self, x):
    return F.leaky_relu(self.conv2(self.prelu1(self.conv1(x))) + x, 0.01)


class GRes(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.in_conv1 = nn.Sequential(WSConv(cin, cout, 3, padding=1), GNs(cout))
    self.basic_block1, self.basic_block2 = Basic(cout), Basic(cout)
    self.ro_conv = nn.Sequential(WSConv(cout, cout, 3, padding=1), GNs(cout))

  def forward(self, x):
    t = F.leaky_relu(self.in_conv1(x), 0.01)
    return F.leaky_relu(self.ro_conv(self.basic_block2(self.basic_block1(t))) + t, 0.01)


def up(x, size=None):
  size = size or (2 * x.shape[2], 2 * x.shape[3])
  return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def crop(x):
  h, w = x.shape[2], x.shape[3]
  return x[:, :, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2]


class TorchLFPNet(nn.Module):
  def __init__(self, widths, blocks, shared=True):
    super().__init__()
    w = dict(zip(WIDTH_NAMES, widths))
    base = w["res_base"]
    c3, c4 = 16 * base, 32 * base
    self.resnet_stem = nn.Sequential(nn.Identity(), nn.Conv2d(12, w["ctx_stem"], 5, 2, 2),
                                     nn.GroupNorm(gn_groups(w["ctx_stem"], 8), w["ctx_stem"]),
                                     nn.LeakyReLU())
    self.resnet = Backbone(w["ctx_stem"], base, blocks)
    self.se1 = nn.Module()
    self.se1.c = nn.Sequential(nn.Conv2d(c4 + c3, c4 + c3, 1), nn.ReLU(), nn.Conv2d(c4 + c3, c4, 1))
    self.setensor = nn.Parameter(torch.randn(1, c3, 1, 1))
    self.rppm = nn.Module()
    self.rppm.stages = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(s), cgn(c4, w["rppm"], 1,
                                                                                 32, None))
                                      for s in (1, 2, 3, 6)])
    self.rppm.trans = WSConv(c4, w["rppm"], 1)
    self.rppm.bottleneck = cgn(w["rppm"] * 5, w["rppm"], 1, 32, None)
    self.aspp = nn.Module()
    self.aspp.stages = nn.Module()
    cin = c4 + w["rppm"]
    for i, r in enumerate((1, 3, 7, 12, 18)):
      self.aspp.stages.add_module(f"c{i}", CBR(cin, w["aspp"], 1 if i == 0 else 3, r, True))
    self.aspp.stages.add_module("imagepool", Pool(cin, w["aspp"]))
    self.resnet1 = cgn(6 * w["aspp"], w["aspp"], 3, 32, "lrelu")
    self.presnet2 = cgn(4 * base, w["ctx_dec"], 3, 32, "lrelu")
    self.resnet2 = cgn(w["aspp"] + w["ctx_dec"], w["ctx_dec"], 3, 32, "lrelu")
    self.resnet3 = cgn(w["ctx_dec"] + base, w["ctx_e3"], 3, 16, "lrelu")
    self.resnet4 = cgn(w["ctx_e3"] + w["ctx_stem"], w["ctx_e5"], 3, 16, "lrelu")
    self.oesnet5 = cgn(w["ctx_e5"] + w["ctx_stem"], w["ctx_e5"], 3, 16, "lrelu")
    self.stem_conv = cgn(12, w["mat_stem"], 3, 16, "relu")
    self.pre_conv = cgn(w["mat_stem"], w["mat_pre"], 3, 16, "relu", stride=2)
    self.res1 = cgn(w["mat_pre"], w["mat_pre"], 3, 32, "relu")
    self.ds1 = cgn(w["mat_pre"], w["mat_pre"], 3, 32, "relu", stride=2)
    mat = self.resnet if shared else Backbone(w["ctx_stem"], base, blocks)
    self.res2, self.res3, self.res4, self.res5 = mat.layer1, mat.layer2, mat.layer3, mat.layer4
    self.res2c = cgn(w["mat_pre"] + w["ctx_e5"], base, 1, 32, "relu")
    self.res3c = cgn(8 * base + w["ctx_e3"], 8 * base, 1, 32, "relu")
    self.ppm = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(s), WSConv(c4, w["ppm"], 1),
                                            GNs(w["ppm"]), nn.LeakyReLU())
                              for s in (1, 2, 3, 6, 1, 2)])
    self.res44 = nn.Sequential(*cgn(c4 + 6 * w["ppm"], w["u4"], 3, 32, "lrelu"),
                               GRes(w["u4"], w["u4"]))
    self.res33 = nn.Sequential(GRes(w["u4"] + 8 * base, w["u3"]))
    self.res22 = nn.Sequential(GRes(w["u3"] + 4 * base, w["u2"]))
    self.res11 = cgn(w["u2"] + w["mat_pre"], w["u1"], 3, 32, "lrelu")
    self.out_conv3 = nn.Conv2d(w["u1"] + 9, w["head1"], 3, padding=1)
    self.out_prelu3 = nn.PReLU(w["head1"])
    self.out_conv2 = nn.Conv2d(w["head1"], w["head2"], 3, padding=1)
    self.out_prelu2 = nn.PReLU(w["head2"])
    self.out_conv1 = nn.Sequential(nn.Conv2d(w["head2"], 7, 1))

  def forward(self, x, xbig, raw):
    xs = F.interpolate(xbig, scale_factor=0.5, mode="bicubic", align_corners=True)
    x_ = self.resnet_stem[3](self.resnet_stem[2](self.resnet_stem[1](xs)))
    r = self.resnet
    f5 = F.relu(r.bn1(r.conv1(x_)))
    f4 = r.layer1(F.max_pool2d(f5, 3, 2, 1))
    f1 = r.layer4(r.layer3(r.layer2(f4)))
    g = self.setensor.expand(1, -1, f1.shape[2], f1.shape[3])
    z = f1 * torch.sigmoid(self.se1.c(torch.cat([f1, g], 1)))
    pri = [up(s(z), z.shape[2:]) for s in self.rppm.stages] + [self.rppm.trans(z)]
    p = F.relu(self.rppm.bottleneck(torch.cat(pri, 1)))
    y = torch.cat([z, p], 1)
    e1 = self.resnet1(torch.cat([m(y) for m in self.aspp.stages.children()], 1))
    e2 = self.resnet2(torch.cat([up(e1), self.presnet2(f4)], 1))
    e3 = self.resnet3(torch.cat([up(e2), f5], 1))
    e5 = self.oesnet5(torch.cat([self.resnet4(torch.cat([up(e3), x_], 1)), x_], 1))
    c4, c8 = crop(e5), crop(e3)
    self.feats = dict(x_=x_, f5=f5, f4=f4, f1=f1, z=z, p=p, e1=e1, e3=e3, e5=e5)
    r1 = self.res1(self.pre_conv(self.stem_conv(x)))
    d1 = self.res2c(torch.cat([self.ds1(r1), c4], 1))
    r2 = self.res2(d1)
    r3 = self.res3(r2)
    r5 = self.res5(self.res4(self.res3c(torch.cat([r3, c8], 1))))
    y = torch.cat([r5] + [up(m(r5), r5.shape[2:]) for m in self.ppm], 1)
    u = self.res33(torch.cat([self.res44(y), r3], 1))
    u = self.res22(torch.cat([up(u), r2], 1))
    u = self.res11(torch.cat([up(u), r1], 1))
    h = torch.cat([up(u), raw, x[:, 3:6], x[:, 0:3]], 1)
    o = self.out_conv1(self.out_prelu2(self.out_conv2(self.out_prelu3(self.out_conv3(h)))))
    a, fg, bg = o[:, :1].clamp(0, 1), o[:, 1:4].clamp(0, 1), o[:, 4:7].clamp(0, 1)
    f = a * raw + (1 - a ** 2) * fg - a * (1 - a) * bg
    b = (1 - a) * raw + (2 * a - a ** 2) * bg - a * (1 - a) * f
    f, b = f.clamp(0, 1), b.clamp(0, 1)
    a = ((a * 0.1 + ((raw - b) * (f - b)).sum(1, keepdim=True)) /
         (((f - b) ** 2).sum(1, keepdim=True) + 0.1)).clamp(0, 1)
    return torch.cat([a, f, b], 1)
