"""GAN quality: FID and KID from feature sets (host-side float64 numpy).

Source: gcc.md §5 (pytorch-fid protocol: Inception-v3 pool3 features, 2048-d;
real statistics from the target-domain test images, fakes quantised to uint8).
  FID = ‖μ_r − μ_f‖² + Tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^{1/2}),
  μ, Σ the mean and *unbiased* covariance (np.cov, ddof=1) of the features.
  Tr((Σ_r Σ_f)^{1/2}) is computed as Σ_i sqrt(λ_i(A Σ_f A)), A = Σ_r^{1/2}
  (symmetric PSD square roots via eigh, negative round-off eigenvalues set to
  0). This is the same number as pytorch-fid's `scipy.linalg.sqrtm` trace but
  never produces complex values or NaN for singular covariances.
  KID (Bińkowski et al. 2018; torch-fidelity / clean-fid defaults): the
  unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³,
  averaged over `num_subsets` random subsets of `subset_size` rows of each
  set (without replacement); returns mean and std over subsets.
Features come from `jaxvision.evaluators.inception` (needs user weights) or
any other extractor.
"""
from __future__ import annotations

import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import ConcatAccumulator, to_numpy


def _features(x, name):
  f = to_numpy(x).astype(np.float64)
  if f.ndim != 2:
    raise ValueError(f"{name} must be [N, D] feature vectors, got shape {f.shape}")
  if f.shape[0] < 2:
    raise ValueError(f"{name} needs at least 2 rows to estimate a covariance")
  _check_finite(f, name, rows=True)
  return f


def _check_finite(x, name, rows=False):
  ok = np.isfinite(x)
  if not ok.all():
    where = (f" in rows {np.flatnonzero(~ok.reshape(ok.shape[0], -1).all(1))[:5].tolist()}"
             if rows else "")
    raise ValueError(f"{name} contain NaN/inf values{where}; the generator (or the feature "
                     "extractor) produced non-finite outputs, so FID/KID are undefined")


def feature_statistics(features):
  """features [N, D] -> (mu [D], sigma [D, D]) with the unbiased covariance."""
  f = _features(features, "features")
  return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh((a + a.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1, sigma2) -> float:
  """Tr((Σ1 Σ2)^{1/2}) for symmetric PSD Σ1, Σ2 (see module doc)."""
  a = _psd_sqrt(np.asarray(sigma1, np.float64))
  m = a @ np.asarray(sigma2, np.float64) @ a
  w = np.linalg.eigvalsh((m + m.T) / 2)
  return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
    raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
  for x, name in ((mu1, "mu1"), (s1, "sigma1"), (mu2, "mu2"), (s2, "sigma2")):
    _check_finite(x, f"statistics {name}")
  diff = mu1 - mu2
  val = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2)
  return float(max(val, 0.0))


def fid_from_features(real, fake) -> float:
  """FID between two feature sets [N_r, D] and [N_f, D]."""
  return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def polynomial_mmd2(x, y, degree: int = 3, gamma: float | None = None,
                    coef0: float = 1.0) -> float:
  """Unbiased MMD² with k(a, b) = (γ aᵀb + coef0)^degree, γ = 1/D by default.
  x: [m, D], y: [n, D]."""
  x, y = _features(x, "x"), _features(y, "y")
  g = 1.0 / x.shape[1] if gamma is None else gamma
  kxx = (g * x @ x.T + coef0) ** degree
  kyy = (g * y @ y.T + coef0) ** degree
  kxy = (g * x @ y.T + coef0) ** degree
  m, n = x.shape[0], y.shape[0]
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
               + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean())


def kid_from_features(real, fake, num_subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
  """KID (mean, std) over random subsets; subset_size is capped at the
  smaller set size (torch-fidelity raises instead; we document the cap)."""
  r, f = _features(real, "real"), _features(fake, "fake")
  if r.shape[1] != f.shape[1]:
    raise ValueError(f"feature dims differ: {r.shape[1]} vs {f.shape[1]}")
  m = min(subset_size, r.shape[0], f.shape[0])
  rng = np.random.default_rng(seed)
  vals = [polynomial_mmd2(r[rng.choice(r.shape[0], m, replace=False)],
                          f[rng.choice(f.shape[0], m, replace=False)])
          for _ in range(num_subsets)]
  return float(np.mean(vals)), float(np.std(vals))


@EVALUATORS.register("fid")
class FidEvaluator:
  """FID (and optionally KID) between accumulated real and fake features.

  `update(fake_features [B, D], mask [B] | None)`; real statistics are given
  once: `FidEvaluator(real_features=...)` or `(real_mu=..., real_sigma=...)`.
  `result()` -> {'fid'} (+ 'kid', 'kid_std' when real features are known and
  kid=True); rows of all hosts are gathered first.
  """

  def __init__(self, real_features=None, real_mu=None, real_sigma=None, kid: bool = False,
               kid_subsets: int = 100, kid_subset_size: int = 1000):
    if real_features is not None:
      self.real = _features(real_features, "real_features")
      self.mu, self.sigma = feature_statistics(self.real)
    elif real_mu is not None and real_sigma is not None:
      self.real = None
      self.mu, self.sigma = np.asarray(real_mu, np.float64), np.asarray(real_sigma, np.float64)
      _check_finite(self.mu, "real_mu")
      _check_finite(self.sigma, "real_sigma")
    else:
      raise ValueError("pass real_features [N, D] or both real_mu and real_sigma")
    if kid and self.real is None:
      raise ValueError("kid=True needs real_features (KID is not a function of mu/sigma)")
    self.kid, self.kid_subsets, self.kid_subset_size = kid, kid_subsets, kid_subset_size
    self.acc = ConcatAccumulator()

  def reset(self):
    self.acc.reset()

  def update(self, fake_features, mask=None):
    self.acc.update({"fake": to_numpy(fake_features)}, mask)

  def result(self) -> dict[str, float]:
    fake = _features(self.acc.result()["fake"], "fake features")
    out = {"fid": frechet_distance(self.mu, self.sigma, *feature_statistics(fake))}
    if self.kid:
      out["kid"], out["kid_std"] = kid_from_features(self.real, fake, self.kid_subsets,
                                                     self.kid_subset_size)
    return out
