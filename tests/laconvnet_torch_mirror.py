"""A small PyTorch copy of the official LaConvNet modules (github.com/luogen1996/LaConvNet),
with the official module names and forward and the aggregation written as unfold, for the
checkpoint-import parity tests (tests/models/test_laconvnet_import*.py). Import it after
`pytest.importorskip("torch")`."""
import math

import numpy as np
import torch

from jaxvision.models import laconvnet as L

nn, F = torch.nn, torch.nn.functional

# Tiny trunk that satisfies the official constructor: Pool input = dim/4 if packing == 4 else
# dim/2, cond dim = dim*t/2 if dim < 128 else dim, 8 attention heads.
DIMS, GROUPS, PACKS = (8, 16, 32, 64, 128), (2, 2, 4, 4, 8), (4, 2, 2, 1, 1)
KERNELS = ((3, 5), (3,), (5, 3), (3,), (3,))
VOCAB, EMBED, HIDDEN, HEADS, NECK_N, REC_HID = 20, 12, 32, 8, 2, 16


# ----------------------------------------------------------------------------- torch mirror
class BaseConv(nn.Module):
  def __init__(self, cin, cout, k, stride=1):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
    self.bn = nn.BatchNorm2d(cout)

  def forward(self, x):
    return F.silu(self.bn(self.conv(x)))


class Pool(nn.Module):
  def __init__(self, cin, cout, k=1):
    super().__init__()
    self.conv = BaseConv(cin * 4, cout, k)

  def forward(self, x, y=None, z=None):
    return self.conv(torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                                x[..., 1::2, 1::2]), 1))


class MHAtt2D(nn.Module):
  def __init__(self, q_planes, kv_planes, hiddens, out_planes, n_head=8):
    super().__init__()
    self.n_head, self.hiddens = n_head, hiddens
    self.linear_v = nn.Linear(kv_planes, hiddens)
    self.linear_k = nn.Linear(kv_planes, hiddens)
    self.linear_q = nn.Conv2d(q_planes, hiddens, 1)
    self.linear_merge = nn.Conv2d(hiddens, out_planes, 1)

  def forward(self, v, k, q, mask):
    b, _, h, w = q.shape
    dk = self.hiddens // self.n_head
    v = self.linear_v(v).view(b, -1, self.n_head, dk).transpose(1, 2)
    k = self.linear_k(k).view(b, -1, self.n_head, dk).transpose(1, 2)
    q = self.linear_q(q).view(b, self.n_head, dk, -1).transpose(2, 3)
    s = (q @ k.transpose(-2, -1) / math.sqrt(dk)).masked_fill(mask, -1e9)
    o = (torch.softmax(s, -1) @ v).transpose(2, 3).contiguous().view(b, self.hiddens, h, w)
    return F.relu(self.linear_merge(o))


def sine_pos(b, h, w, c):
  """DETR PositionEmbeddingSine(c // 2, normalize=False) of an all-valid mask, NCHW."""
  npf = c // 2
  ones = torch.ones(b, h, w)
  dim_t = torch.arange(npf, dtype=torch.float32)
  dim_t = 10000 ** (2 * (dim_t // 2) / npf)
  px, py = ones.cumsum(2)[..., None] / dim_t, ones.cumsum(1)[..., None] / dim_t
  px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), 4).flatten(3)
  py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), 4).flatten(3)
  return torch.cat((py, px), 3).permute(0, 3, 1, 2)


class ParameterGenerator(nn.Module):
  def __init__(self, planes, cond_planes, out_planes, tsize):
    super().__init__()
    self.t = tsize
    self.mha = MHAtt2D(planes * tsize * tsize, cond_planes, out_planes, out_planes * tsize ** 2)
    self.norm = nn.BatchNorm2d(out_planes)

  def forward(self, x, y, y_mask):
    b, c, h, w = x.shape
    t = self.t
    x = x + sine_pos(b, h, w, c)
    if t > 1:  # pixel packing
      x = x.view(b, c, h // t, t, w // t, t).permute(0, 1, 3, 5, 2, 4).reshape(
          b, c * t * t, h // t, w // t)
    z = self.mha(q=x, k=y, v=y, mask=y_mask)
    if t > 1:  # token recovering
      z = z.view(b, -1, t, t, h // t, w // t).permute(0, 1, 4, 2, 5, 3).reshape(b, -1, h, w)
    return F.relu(self.norm(z))


class LaConv(nn.Module):
  def __init__(self, num_features, cond_features, kernel_size, group):
    super().__init__()
    self.k, self.group = kernel_size, group
    self.linear = nn.Conv2d(cond_features, kernel_size ** 2 * group, 1)

  def forward(self, x, cond):
    b, c, h, w = x.shape
    k, g = self.k, self.group
    weight = self.linear(cond).view(b, g, k * k, -1)
    # SAN aggregation_zeropad: channel c uses weight group c % g.
    cols = F.unfold(x, k, padding=k // 2).view(b, c // g, g, k * k, h * w)
    return (cols * weight.unsqueeze(1)).sum(3).view(b, c, h, w)


class LaConvBlock(nn.Module):
  def __init__(self, dim, text_dim, cond_dim, kernel, packing_size, group):
    super().__init__()
    self.cond_generator = ParameterGenerator(dim, text_dim, cond_dim, packing_size)
    self.conv1 = LaConv(dim, cond_dim, kernel, group)
    self.bn1 = nn.BatchNorm2d(dim)
    self.block1 = nn.Sequential(nn.Conv2d(dim, 4 * dim, 1, bias=False), nn.BatchNorm2d(4 * dim),
                                nn.SiLU(), nn.Conv2d(4 * dim, dim, 1, bias=False),
                                nn.BatchNorm2d(dim))

  def forward(self, x, cond, cond_mask):
    out = self.bn1(self.conv1(x, self.cond_generator(x, cond, cond_mask)))
    out = F.silu(x + out)
    return F.silu(self.block1(out) + out)


class VisualEncoder(nn.Module):
  def __init__(self, text_dim, dims, groups, packs, kernels):
    super().__init__()
    self.stem = Pool(3, dims[0], 3)
    blocks = []
    for i, (d, g, t, ks) in enumerate(zip(dims, groups, packs, kernels)):
      layers = [Pool(d // 4 if t == 4 else d // 2, d, 1)] if i > 0 else []
      layers += [LaConvBlock(d, text_dim, d * t // 2 if d < 128 else d, k, t, g) for k in ks]
      blocks.append(nn.ModuleList(layers))
    self.blocks = nn.ModuleList(blocks)

  def forward(self, x, y, y_mask):
    x = self.stem(x)
    feats = []
    for stage in self.blocks:
      for layer in stage:
        x = layer(x, y, y_mask)
      feats.append(x)
    return feats


class LayerNorm(nn.Module):
  def __init__(self, size, eps=1e-6):
    super().__init__()
    self.eps = eps
    self.weight, self.bias = nn.Parameter(torch.ones(size)), nn.Parameter(torch.zeros(size))

  def forward(self, x):
    mean, std = x.mean(-1, keepdim=True), x.std(-1, keepdim=True)
    return self.weight * (x - mean) / (std + self.eps) + self.bias


class FC(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.linear = nn.Linear(cin, cout)

  def forward(self, x):
    return F.relu(self.linear(x))


class MLP(nn.Module):
  def __init__(self, cin, mid, cout):
    super().__init__()
    self.fc, self.linear = FC(cin, mid), nn.Linear(mid, cout)

  def forward(self, x):
    return self.linear(self.fc(x))


class MHAtt(nn.Module):
  def __init__(self, hidden, heads):
    super().__init__()
    self.hidden, self.heads = hidden, heads
    self.linear_v, self.linear_k = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
    self.linear_q, self.linear_merge = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)

  def forward(self, v, k, q, mask):
    b, dk = q.shape[0], self.hidden // self.heads
    v, k, q = (lin(a).view(b, -1, self.heads, dk).transpose(1, 2)
               for lin, a in ((self.linear_v, v), (self.linear_k, k), (self.linear_q, q)))
    s = (q @ k.transpose(-2, -1) / math.sqrt(dk)).masked_fill(mask, -1e9)
    o = (torch.softmax(s, -1) @ v).transpose(1, 2).contiguous().view(b, -1, self.hidden)
    return self.linear_merge(o)


class FFN(nn.Module):
  def __init__(self, hidden, ff):
    super().__init__()
    self.mlp = MLP(hidden, ff, hidden)

  def forward(self, x):
    return self.mlp(x)


class SA(nn.Module):
  def __init__(self, hidden, heads, ff):
    super().__init__()
    self.mhatt, self.ffn = MHAtt(hidden, heads), FFN(hidden, ff)
    self.norm1, self.norm2 = LayerNorm(hidden), LayerNorm(hidden)

  def forward(self, y, y_mask):
    y = self.norm1(y + self.mhatt(v=y, k=y, q=y, mask=y_mask))
    return self.norm2(y + self.ffn(y))


class AttFlat(nn.Module):
  def __init__(self, hidden):
    super().__init__()
    self.mlp, self.linear_merge = MLP(hidden, hidden // 2, 1), nn.Linear(hidden, hidden)


class LSTM_SA(nn.Module):  # noqa: N801 (official name)
  def __init__(self, vocab, embed, hidden, heads):
    super().__init__()
    self.embedding = nn.Embedding(vocab, embed)
    self.lstm = nn.GRU(embed, hidden, num_layers=1, batch_first=True)
    self.sa_list = nn.ModuleList([SA(hidden, heads, 4 * hidden)])
    self.att_flat = AttFlat(hidden)  # unused by the REC net

  def forward(self, ix):
    mask = (ix == 0)[:, None, None, :]
    feat, _ = self.lstm(self.embedding(ix))
    for sa in self.sa_list:
      feat = sa(feat, mask)
    return feat, mask


class Bottleneck(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.conv1, self.conv2 = BaseConv(c, c, 1), BaseConv(c, c, 3)

  def forward(self, x):
    return self.conv2(self.conv1(x))


class CSPLayer(nn.Module):
  def __init__(self, cin, cout, n):
    super().__init__()
    hid = cout // 2
    self.conv1, self.conv2 = BaseConv(cin, hid, 1), BaseConv(cin, hid, 1)
    self.conv3 = BaseConv(2 * hid, cout, 1)
    self.m = nn.Sequential(*[Bottleneck(hid) for _ in range(n)])

  def forward(self, x):
    return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), 1))


class PAFPN(nn.Module):
  def __init__(self, ch, n):
    super().__init__()
    self.lateral_conv0 = BaseConv(ch[2], ch[1], 1)
    self.C3_p4 = CSPLayer(2 * ch[1], ch[1], n)
    self.reduce_conv1 = BaseConv(ch[1], ch[0], 1)
    self.C3_p3 = CSPLayer(2 * ch[0], ch[0], n)
    self.bu_conv2 = BaseConv(ch[0], ch[0], 3, 2)
    self.C3_n3 = CSPLayer(2 * ch[0], ch[1], n)
    self.bu_conv1 = BaseConv(ch[1], ch[1], 3, 2)
    self.C3_n4 = CSPLayer(2 * ch[1], ch[2], n)

  def forward(self, feats):
    x2, x1, x0 = feats
    up = lambda a: F.interpolate(a, scale_factor=2, mode="nearest")  # noqa: E731
    fpn_out0 = self.lateral_conv0(x0)
    f_out0 = self.C3_p4(torch.cat([up(fpn_out0), x1], 1))
    fpn_out1 = self.reduce_conv1(f_out0)
    pan_out2 = self.C3_p3(torch.cat([up(fpn_out1), x2], 1))
    pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
    pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
    return [pan_out2, pan_out1, pan_out0]


class REChead(nn.Module):
  def __init__(self, cin, hidden):
    super().__init__()
    self.stems = nn.ModuleList([BaseConv(cin, hidden, 1)])
    self.reg_convs = nn.ModuleList([nn.Sequential(BaseConv(hidden, hidden, 3),
                                                  BaseConv(hidden, hidden, 3))])
    self.reg_preds = nn.ModuleList([nn.Conv2d(hidden, 4, 1)])
    self.obj_preds = nn.ModuleList([nn.Conv2d(hidden, 1, 1)])

  def forward(self, x, stride=32):
    """-> raw [B, 5, h, w] and the official inference box: xyxy + sigmoid score of the argmax."""
    f = self.reg_convs[0](self.stems[0](x))
    raw = torch.cat([self.reg_preds[0](f), self.obj_preds[0](f)], 1)
    b, _, h, w = raw.shape
    out = torch.cat([raw[:, :4], raw[:, 4:].sigmoid()], 1).flatten(2).permute(0, 2, 1).clone()
    yv, xv = torch.meshgrid([torch.arange(h), torch.arange(w)], indexing="ij")
    grid = torch.stack((xv, yv), 2).view(1, -1, 2).float()
    out[..., :2] = (out[..., :2] + grid) * stride
    out[..., 2:4] = torch.exp(out[..., 2:4]) * stride
    out[..., :2] = out[..., :2] - out[..., 2:4] / 2
    out[..., 2:4] = out[..., :2] + out[..., 2:4]
    pred = out[torch.arange(b), out[..., 4].argmax(-1)]
    return raw, pred


class Net(nn.Module):
  def __init__(self, vocab, embed, hidden, heads, dims, groups, packs, kernels, neck_n, rec_hid):
    super().__init__()
    self.lang_encoder = LSTM_SA(vocab, embed, hidden, heads)
    self.visual_encoder = VisualEncoder(hidden, dims, groups, packs, kernels)
    self.multi_scale_manner = PAFPN(dims[2:], neck_n)
    self.head = REChead(dims[4], rec_hid)

  def forward(self, img, ix):
    feat, mask = self.lang_encoder(ix)
    stages = self.visual_encoder(img, feat, mask)
    x = self.multi_scale_manner(stages[-3:])
    raw, pred = self.head(x[2])
    return feat, stages + x, raw, pred


def randomize(net, gen):
  """Random N(0, gain/fan_in) weights (gain 1 in the trunk, whose LaConv is multiplicative, 2 in
  the plain conv neck/head) and random BN statistics, so that the outputs depend on the input
  well above the tolerance (torch's default init fades it out)."""
  for name, m in net.named_modules():
    if isinstance(m, (nn.Conv2d, nn.Linear)):
      gain = 2.0 if name.startswith(("multi_scale_manner", "detection_neck", "head")) else 1.0
      m.weight.data = torch.randn(m.weight.shape, generator=gen) * math.sqrt(
          gain / m.weight[0].numel())
  for m in net.modules():
    if isinstance(m, nn.BatchNorm2d):
      n = m.num_features
      m.weight.data = torch.rand(n, generator=gen) + 0.5
      m.bias.data = 0.1 * torch.randn(n, generator=gen)
      m.running_mean.data = 0.1 * torch.randn(n, generator=gen)
      m.running_var.data = torch.rand(n, generator=gen) * 1.5 + 0.5
      m.num_batches_tracked.fill_(7)
  for m in net.modules():
    if isinstance(m, LayerNorm):
      m.weight.data = torch.rand(m.weight.shape, generator=gen) + 0.5
      m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=gen)


def save_official(net, path, **extra):
  """Saves `net` as the official train.py does: {'state_dict': {'module.' + key: tensor}}."""
  torch.save({"epoch": 3, **extra,
              "state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, path)
  return path


def sample_inputs():
  """Two 64x64 images in [0, 1] (NHWC) and their token ids (PAD = 0)."""
  img = np.random.default_rng(0).uniform(0.0, 1.0, (2, 64, 64, 3)).astype(np.float32)
  return img, np.array([[5, 9, 3, 17, 0, 0], [4, 19, 8, 2, 11, 6]], np.int32)


def tiny_spec():
  conds = tuple(d * t // 2 if d < 128 else d for d, t in zip(DIMS, PACKS))
  return L.TrunkSpec(dims=DIMS, groups=GROUPS, packings=PACKS, kernels=KERNELS, heads=8,
                     cond_dims=conds)
