r"""Learning the model: the ELBO's gradient in θ, variational EM, and the data-level KLs.

Notebooks 2-4 fit :math:`q` to the posterior of a *fixed* model. Learning also
moves the model's parameters :math:`\theta`. Three exact results, each with a
model small enough that every term is computable:

* **Which gradient needs the reparameterization trick.** For
  :math:`\mathcal L(\theta,\phi)=\mathbb E_{q_\phi}[\log p_\theta(x,z)-\log q_\phi(z)]`
  the distribution does not depend on :math:`\theta`, so
  :math:`\nabla_\theta\mathcal L=\mathbb E_{q_\phi}[\nabla_\theta\log p_\theta(x,z)]`
  (plain Monte Carlo); :math:`\nabla_\phi` needs the score function or a
  reparameterization. :func:`conjugate_elbo_gradients` gives both in closed form
  for :class:`~vi_helpers.models.ConjugateGaussianModel`.
* **Variational EM.** Alternate an E-step (maximize :math:`\mathcal L` over each
  :math:`q_g`) and an M-step (maximize over :math:`\theta`).
  :func:`variational_em_gaussian_groups` runs it for groups
  :math:`z_g\sim\mathcal N(\mu_0,\sigma_0^2)`, :math:`x_{gi}\mid z_g\sim\mathcal N(z_g,\sigma^2)`,
  where both steps are closed-form and the fixed point is the maximum-likelihood
  estimate of :func:`gaussian_groups_mle`.
* **Learning is forward KL, inference reverse KL.** Averaged over a data
  distribution :math:`p_{\rm data}`,

  .. math::
      \mathbb E_{p_{\rm data}}[\mathcal L(x)] = -\mathrm{KL}(p_{\rm data}\,\|\,p_\theta)
      - H(p_{\rm data}) - \mathbb E_{p_{\rm data}}\big[\mathrm{KL}(q(z\mid x)\,\|\,p_\theta(z\mid x))\big].

  :func:`data_level_elbo_terms` computes every term in closed form for a
  :class:`~vi_helpers.models.LinearGaussianVAE` and a Gaussian :math:`p_{\rm data}`.

All values are in nats.

References:
    Neal & Hinton (1998), A view of the EM algorithm that justifies incremental,
    sparse, and other variants.
    Kingma & Welling (2014), Auto-Encoding Variational Bayes.
    Tipping & Bishop (1999), Probabilistic Principal Component Analysis.
"""

from __future__ import annotations

import math

import torch

from ._validate import check_positive_float, check_positive_int, check_tensor
from .kl import LOG_2PI, kl_full_normal

__all__ = [
    "conjugate_elbo_gradients",
    "gaussian_groups_mle",
    "variational_em_gaussian_groups",
    "linear_vae_posterior",
    "data_level_elbo_terms",
]


# -- the ELBO's gradients in theta and phi, conjugate model -----------------------------


def conjugate_elbo_gradients(model, x: torch.Tensor, m, s) -> dict[str, torch.Tensor]:
    r"""Closed-form gradients of the ELBO of :math:`q=\mathcal N(m, s^2)` for a conjugate model.

    Model :math:`z\sim\mathcal N(\mu_0,\sigma_0^2)`, :math:`x_i\mid z\sim\mathcal N(z,\sigma^2)`,
    :math:`i=1..n` (:class:`~vi_helpers.models.ConjugateGaussianModel`); its ELBO
    (:meth:`~vi_helpers.models.ConjugateGaussianModel.elbo`) is
    :math:`-\frac n2\log2\pi\sigma^2-\frac{\sum_i(x_i-m)^2+ns^2}{2\sigma^2}-\mathrm{KL}(\mathcal N(m,s^2)\,\|\,\mathcal N(\mu_0,\sigma_0^2))`. Hence

    .. math::
        \partial_{\mu_0}\mathcal L = \frac{m-\mu_0}{\sigma_0^2},\qquad
        \partial_{\sigma_0}\mathcal L = -\frac1{\sigma_0}+\frac{s^2+(m-\mu_0)^2}{\sigma_0^3},

    .. math::
        \partial_m\mathcal L = \frac{\sum_i(x_i-m)}{\sigma^2}-\frac{m-\mu_0}{\sigma_0^2},\qquad
        \partial_s\mathcal L = -\frac{ns}{\sigma^2}+\frac1s-\frac{s}{\sigma_0^2}.

    The model parameters are :math:`\theta=(\mu_0,\sigma_0)`, the variational ones
    :math:`\phi=(m,s)`.

    Args:
        model: a ``ConjugateGaussianModel``.
        x: ``(n,)`` observations.
        m, s: the mean and standard deviation (> 0) of ``q``, numbers or 0-dim tensors.

    Returns:
        ``{"mu0", "sigma0", "m", "s"}`` -> 0-dim tensors in the dtype of ``x``.
    """
    x = check_tensor("x", x, ndim=1)
    m = torch.as_tensor(m, dtype=x.dtype)
    s = torch.as_tensor(s, dtype=x.dtype)
    if bool((s <= 0).any()):
        raise ValueError(f"s must be > 0, got {float(s):.4g}")
    mu0, sigma0, sigma = model.mu0, model.sigma0, model.sigma
    n = x.numel()
    return {
        "mu0": (m - mu0) / sigma0**2,
        "sigma0": -1.0 / sigma0 + (s.pow(2) + (m - mu0).pow(2)) / sigma0**3,
        "m": (x - m).sum() / sigma**2 - (m - mu0) / sigma0**2,
        "s": -n * s / sigma**2 + 1.0 / s - s / sigma0**2,
    }


# -- variational EM for Gaussian groups -------------------------------------------------


def _check_groups(x_groups: torch.Tensor, sigma) -> tuple[torch.Tensor, float]:
    x_groups = check_tensor("x_groups", x_groups, ndim=2)
    if x_groups.shape[0] < 2:
        raise ValueError(f"x_groups needs at least 2 groups (rows), got {x_groups.shape[0]}")
    return x_groups, check_positive_float("sigma", sigma)


def gaussian_groups_mle(x_groups: torch.Tensor, sigma: float) -> tuple[float, float]:
    r"""Maximum-likelihood :math:`(\mu_0,\sigma_0)` for Gaussian groups, in closed form.

    With :math:`G` groups of :math:`n` observations, the group means are
    independent, :math:`\bar x_g\sim\mathcal N(\mu_0,\sigma_0^2+\sigma^2/n)`, and they
    are sufficient for :math:`(\mu_0,\sigma_0)`. So
    :math:`\hat\mu_0=\frac1G\sum_g\bar x_g` and
    :math:`\hat\sigma_0^2=\max\big(0,\ \frac1G\sum_g(\bar x_g-\hat\mu_0)^2-\sigma^2/n\big)`.

    Args:
        x_groups: ``(G, n)``, row ``g`` holds the observations of group ``g``.
        sigma: observation noise standard deviation (> 0), known.

    Returns:
        ``(mu0_hat, sigma0_hat)`` as floats.
    """
    x_groups, sigma = _check_groups(x_groups, sigma)
    means = x_groups.double().mean(dim=1)
    mu0 = float(means.mean())
    var0 = float((means - mu0).pow(2).mean()) - sigma**2 / x_groups.shape[1]
    return mu0, math.sqrt(max(var0, 0.0))


def variational_em_gaussian_groups(
    x_groups: torch.Tensor,
    sigma: float,
    *,
    mu0: float = 0.0,
    sigma0: float = 1.0,
    n_iter: int = 50,
) -> list[dict[str, float | torch.Tensor]]:
    r"""Variational EM for :math:`z_g\sim\mathcal N(\mu_0,\sigma_0^2)`, :math:`x_{gi}\mid z_g\sim\mathcal N(z_g,\sigma^2)`.

    The ELBO of the whole data set with one :math:`q_g=\mathcal N(m_g,s_g^2)` per
    group is :math:`\sum_g\mathcal L_g(\theta, q_g)`, :math:`\theta=(\mu_0,\sigma_0)`.

    * **E-step** (fit :math:`q`, :math:`\theta` fixed): each :math:`q_g` becomes the
      exact posterior of its group (the ELBO's maximizer over all :math:`q_g`), so
      the ELBO equals :math:`\log p_\theta(x)` after every E-step.
    * **M-step** (fit :math:`\theta`, :math:`q` fixed): :math:`\mathcal L` depends on
      :math:`\theta` only through :math:`\sum_g\mathbb E_{q_g}\log\mathcal N(z_g;\mu_0,\sigma_0^2)`,
      maximized by :math:`\mu_0=\frac1G\sum_g m_g` and
      :math:`\sigma_0^2=\frac1G\sum_g\big(s_g^2+(m_g-\mu_0)^2\big)`.

    Each iteration cannot lower :math:`\log p_\theta(x)` (Neal & Hinton 1998), and
    the fixed point is :func:`gaussian_groups_mle`.

    Args:
        x_groups: ``(G, n)`` observations, one row per group.
        sigma: observation noise standard deviation (> 0), known.
        mu0, sigma0: initial :math:`\theta` (``sigma0 > 0``).
        n_iter: number of E/M iterations (> 0).

    Returns:
        One dict per iteration, after its M-step: ``mu0``, ``sigma0`` (floats),
        ``elbo_before_m`` (the ELBO after the E-step, = ``log_evidence_before``),
        ``elbo_after_m`` (after the M-step, same ``q``), ``log_evidence`` (under the
        new :math:`\theta`), all in nats and summed over the groups; and ``m``, ``s``
        (``(G,)`` tensors, the E-step's posteriors).
    """
    from .models import ConjugateGaussianModel

    x_groups, sigma = _check_groups(x_groups, sigma)
    sigma0 = check_positive_float("sigma0", sigma0)
    n_iter = check_positive_int("n_iter", n_iter)
    x_groups = x_groups.double()
    mu0 = float(mu0)
    history = []
    for _ in range(n_iter):
        model = ConjugateGaussianModel(mu0, sigma0, sigma)
        posts = [model.posterior(row) for row in x_groups]  # E-step: exact q_g
        m = torch.stack([p.loc for p in posts])
        s = torch.stack([p.scale for p in posts])
        elbo_e = float(sum(model.elbo(row, mg, sg) for row, mg, sg in zip(x_groups, m, s, strict=True)))
        mu0 = float(m.mean())  # M-step
        sigma0 = math.sqrt(float((s.pow(2) + (m - mu0).pow(2)).mean()))
        new = ConjugateGaussianModel(mu0, sigma0, sigma)
        elbo_m = float(sum(new.elbo(row, mg, sg) for row, mg, sg in zip(x_groups, m, s, strict=True)))
        log_ev = float(sum(new.log_evidence(row) for row in x_groups))
        history.append({"mu0": mu0, "sigma0": sigma0, "elbo_before_m": elbo_e,
                        "elbo_after_m": elbo_m, "log_evidence": log_ev, "m": m, "s": s})
    return history


# -- learning is forward KL, inference is reverse KL ------------------------------------


def linear_vae_posterior(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact posterior :math:`p_\theta(z\mid x)` of a :class:`~vi_helpers.models.LinearGaussianVAE`.

    For :math:`z\sim\mathcal N(0,I_L)`, :math:`x\mid z\sim\mathcal N(Wz+b,\sigma^2I_D)`:
    :math:`p(z\mid x)=\mathcal N\big(M^{-1}W^\top(x-b),\ \sigma^2M^{-1}\big)` with
    :math:`M=W^\top W+\sigma^2 I_L` (Tipping & Bishop 1999).

    Args:
        model: a ``LinearGaussianVAE``.
        x: ``(B, D)`` observations.

    Returns:
        ``(mean (B, L), cov (L, L))``; the covariance does not depend on ``x``.
    """
    check_tensor("x", x, ndim=2, last_dim=model.input_size)
    W, b = model.decoder.weight, model.decoder.bias
    var = model.obs_log_var.exp()
    M = W.T @ W + var * torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    mean = torch.linalg.solve(M, W.T @ (x - b).T).T
    return mean, var * torch.linalg.inv(M)


def data_level_elbo_terms(model, data_mean: torch.Tensor, data_cov: torch.Tensor) -> dict[str, float]:
    r"""The ELBO of a linear VAE averaged over a Gaussian :math:`p_{\rm data}`, and its three parts.

    For every :math:`x`, :math:`\mathcal L(x)=\log p_\theta(x)-\mathrm{KL}(q(z\mid x)\,\|\,p_\theta(z\mid x))`
    (notebook 2). Averaging over :math:`p_{\rm data}=\mathcal N(\bar x, \Sigma)` and
    writing :math:`\mathbb E_{p_{\rm data}}\log p_\theta = -\mathrm{KL}(p_{\rm data}\,\|\,p_\theta)-H(p_{\rm data})`:

    .. math::
        \mathbb E_{p_{\rm data}}[\mathcal L] = -\mathrm{KL}(p_{\rm data}\,\|\,p_\theta)
        - H(p_{\rm data}) - \mathbb E_{p_{\rm data}}\big[\mathrm{KL}(q(z\mid x)\,\|\,p_\theta(z\mid x))\big].

    Computed separately (so the identity can be checked):

    * ``expected_elbo``: :meth:`LinearGaussianVAE.analytic_elbo` is a quadratic
      polynomial in :math:`x`, so its average over :math:`p_{\rm data}` equals its
      average over the :math:`2D` points :math:`\bar x\pm\sqrt{D\lambda_j}\,u_j`
      (eigen-decomposition :math:`\Sigma=\sum_j\lambda_ju_ju_j^\top`), which have
      the same mean and covariance;
    * ``kl_data_model``: :math:`\mathrm{KL}(\mathcal N(\bar x,\Sigma)\,\|\,\mathcal N(b,WW^\top+\sigma^2I))`
      in closed form (:func:`~vi_helpers.kl.kl_full_normal`), the forward KL that
      learning minimizes;
    * ``entropy_data``: :math:`\tfrac12\log\det(2\pi e\,\Sigma)`, a constant;
    * ``posterior_kl``: :math:`\mathbb E_{p_{\rm data}}\mathrm{KL}(q(z\mid x)\,\|\,p_\theta(z\mid x))`,
      the reverse KL that inference minimizes. The difference of the two means,
      :math:`\delta(x)=Gx+h`, is affine in :math:`x`, so the average is the KL at
      :math:`x=\bar x` plus :math:`\tfrac12\mathrm{tr}(P\,G\Sigma G^\top)`,
      :math:`P` the posterior precision.

    Args:
        model: a ``LinearGaussianVAE``.
        data_mean: ``(D,)`` mean of :math:`p_{\rm data}`.
        data_cov: ``(D, D)`` symmetric positive-definite covariance of :math:`p_{\rm data}`.

    Returns:
        ``{"expected_elbo", "kl_data_model", "entropy_data", "posterior_kl"}``, floats
        in nats per example, computed in float64.
    """
    d = model.input_size
    check_tensor("data_mean", data_mean, shape=(d,))
    check_tensor("data_cov", data_cov, shape=(d, d))
    model64 = type(model)(d, model.latent_size).double()
    model64.load_state_dict({k: v.detach().double() for k, v in model.state_dict().items()})
    mean, cov = data_mean.double(), data_cov.double()
    evals, evecs = torch.linalg.eigh(cov)
    if float(evals.min()) <= 0:
        raise ValueError("data_cov must be positive definite")
    with torch.no_grad():
        spread = (evecs * (d * evals).sqrt()).T  # rows sqrt(D lambda_j) u_j
        points = torch.cat([mean + spread, mean - spread])
        expected_elbo = float(model64.analytic_elbo(points).mean())
        marginal = model64.marginal()
        kl_data_model = float(kl_full_normal(mean, cov, marginal.loc, marginal.covariance_matrix))
        entropy = 0.5 * (d * (LOG_2PI + 1.0) + float(torch.logdet(cov)))
        q_mean, q_log_var = model64.encode(mean[None])
        p_mean, p_cov = linear_vae_posterior(model64, mean[None])
        q_cov = torch.diag(q_log_var[0].exp())
        kl_at_mean = float(kl_full_normal(q_mean[0], q_cov, p_mean[0], p_cov))
        W = model64.decoder.weight
        M = W.T @ W + model64.obs_log_var.exp() * torch.eye(model64.latent_size, dtype=W.dtype)
        G = torch.linalg.solve(M, W.T) - model64.encoder_mean.weight  # delta(x) = G x + h
        precision = torch.linalg.inv(p_cov)
        spread_term = 0.5 * float(torch.trace(precision @ G @ cov @ G.T))
    return {
        "expected_elbo": expected_elbo,
        "kl_data_model": kl_data_model,
        "entropy_data": entropy,
        "posterior_kl": kl_at_mean + spread_term,
    }
