r"""The exact case of notebook 12: diffusion on Gaussian data.

For data :math:`x_0\sim\mathcal N(\mu_{\mathrm{data}},C)` every distribution of the forward chain
is Gaussian, so the *true* reverse conditionals :math:`q(x_{t-1}\mid x_t)` are
Gaussian too and known in closed form (:func:`gaussian_reverse_kernels`). A
reverse chain built from them, started at :math:`p(x_T)=q(x_T)`, reproduces the
forward joint exactly, so its ELBO equals :math:`\log p(x_0)` for every
:math:`x_0` (:func:`gaussian_data_elbo`): the diffusion counterpart of the
pPCA check of notebook 8. Replacing parts of it by the practical choices (the
prior :math:`\mathcal N(0,I)`, fixed isotropic reverse variances) shows what each
costs, in nats.

The schedule notation (:math:`\alpha_t`, :math:`\bar\alpha_t`, 1-based ``t``) is
that of :mod:`vi_helpers.diffusion`. Use float64.

References:
    Sohl-Dickstein et al. (2015), Deep Unsupervised Learning using Nonequilibrium
    Thermodynamics (Gaussian reverse kernels in the small-step limit).
    Ho, Jain & Abbeel (2020), Denoising Diffusion Probabilistic Models, section 3.2
    (the two variance choices).
    Nichol & Dhariwal (2021), Improved Denoising Diffusion Probabilistic Models
    (the first steps dominate the bound; learned variances).
    Bishop (2006), Pattern Recognition and Machine Learning, section 2.3 (Gaussian
    conditioning).
"""

from __future__ import annotations

import math

import torch

from ._validate import check_choice, check_tensor
from .diffusion import VARIANCES, alpha_bar, reverse_variance
from .kl import kl_full_normal

__all__ = ["PRIORS", "REVERSES", "gaussian_reverse_kernels", "gaussian_data_elbo"]


def _check_gaussian(mean, cov) -> None:
    check_tensor("mean", mean, ndim=1)
    d = mean.shape[0]
    check_tensor("cov", cov, shape=(d, d))


def gaussian_reverse_kernels(mean: torch.Tensor, cov: torch.Tensor, alpha: torch.Tensor):
    r"""The exact reverse conditionals :math:`q(x_{t-1}\mid x_t)` for data :math:`x_0\sim\mathcal N(\mu_{\mathrm{data}},C)`.

    The forward marginals are :math:`q(x_t)=\mathcal N(\sqrt{\bar\alpha_t}\mu_{\mathrm{data}},C_t)` with
    :math:`C_t=\bar\alpha_tC+(1-\bar\alpha_t)I`, and
    :math:`\mathrm{Cov}(x_{t-1},x_t)=\sqrt{\alpha_t}C_{t-1}`. Conditioning the
    jointly Gaussian pair gives :math:`q(x_{t-1}\mid x_t)=\mathcal N(A_tx_t+b_t,\Sigma_t)`,

    .. math::
        A_t=\sqrt{\alpha_t}\,C_{t-1}C_t^{-1},\quad b_t=(\sqrt{\bar\alpha_{t-1}}I-\sqrt{\bar\alpha_t}A_t)\mu_{\mathrm{data}},\quad
        \Sigma_t=C_{t-1}-\sqrt{\alpha_t}\,A_tC_{t-1}.

    These are the optimal reverse kernels: with them and :math:`p(x_T)=q(x_T)` the
    reverse chain's joint *is* the forward joint, so the ELBO is tight.

    Args:
        mean: ``(D,)`` data mean :math:`\mu_{\mathrm{data}}`.
        cov: ``(D, D)`` symmetric positive-definite data covariance :math:`C`.
        alpha: ``(T,)`` schedule.

    Returns:
        ``(A, b, Sigma)`` of shapes ``(T, D, D)``, ``(T, D)``, ``(T, D, D)``; index
        ``t - 1`` holds step ``t``. Use float64.
    """
    _check_gaussian(mean, cov)
    a_bar = alpha_bar(alpha).to(mean.dtype)
    eye = torch.eye(mean.shape[0], dtype=mean.dtype)
    c_t = a_bar[:, None, None] * cov + (1.0 - a_bar)[:, None, None] * eye  # (T + 1, D, D)
    m_t = a_bar.sqrt()[:, None] * mean  # (T + 1, D)
    sqrt_a = alpha.to(mean.dtype).sqrt()[:, None, None]
    # C_{t-1} C_t^{-1} = (C_t^{-1} C_{t-1})^T because both are symmetric
    gain = torch.linalg.solve(c_t[1:], c_t[:-1]).transpose(-2, -1)
    a_mat = sqrt_a * gain
    b = m_t[:-1] - (a_mat @ m_t[1:, :, None]).squeeze(-1)
    sigma = c_t[:-1] - sqrt_a * a_mat @ c_t[:-1]
    return a_mat, b, 0.5 * (sigma + sigma.transpose(-2, -1))


def _log_normal(x: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, cov) per row, through a Cholesky factor (x, mu (B, D); cov (D, D))."""
    chol = torch.linalg.cholesky(cov)
    y = torch.linalg.solve_triangular(chol, (x - mu).T, upper=False)
    logdet = 2.0 * torch.log(torch.diagonal(chol)).sum()
    return -0.5 * (x.shape[-1] * math.log(2 * math.pi) + logdet + y.pow(2).sum(dim=0))


def _expected_step_kls(x0, x_bar, p_mean, a_mat, sigma, alpha) -> torch.Tensor:
    """E over x_t ~ q(x_t|x0) of KL(q(x_{t-1}|x_t,x0) || N(A_t x_t + b_t, S_t)), t = 2..T: (B, T - 1)."""
    a_bar = alpha_bar(alpha)
    n, d = x0.shape
    eye = torch.eye(d, dtype=x0.dtype)
    a_t, prev, now = alpha[1:], a_bar[1:-1], a_bar[2:]
    coef_x0 = (prev.sqrt() * (1.0 - a_t) / (1.0 - now))[:, None, None]
    coef_xt = a_t.sqrt() * (1.0 - prev) / (1.0 - now)
    q_var = (1.0 - prev) * (1.0 - a_t) / (1.0 - now)
    q_mean = coef_x0 * x0 + coef_xt[:, None, None] * x_bar[1:]  # tilde mu_t at x_t = x_bar
    q_cov = (q_var[:, None, None] * eye).unsqueeze(1).expand(-1, n, d, d)
    s_t = sigma[1:].unsqueeze(1).expand_as(q_cov)
    # the mean difference (c_t I - A_t) x_t + ... varies with x_t: its spread adds a trace
    m_diff = coef_xt[:, None, None] * eye - a_mat[1:]
    spread = torch.diagonal(torch.linalg.solve(sigma[1:], m_diff @ m_diff.mT), 0, -2, -1).sum(-1)
    kl = kl_full_normal(q_mean, q_cov, p_mean[1:], s_t) + 0.5 * ((1.0 - now) * spread)[:, None]
    return kl.T


#: Choices of :func:`gaussian_data_elbo`.
PRIORS = ("marginal", "standard", "learned_mean")
REVERSES = ("optimal", *VARIANCES)


def gaussian_data_elbo(x0: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor,
                       alpha: torch.Tensor, *, prior: str = "marginal", reverse: str = "optimal"):
    r"""The ELBO of :math:`x_0` under a reverse chain built from the exact Gaussian kernels.

    The expectations over :math:`x_t\sim q(x_t\mid x_0)=\mathcal N(\bar x_t,(1-\bar\alpha_t)I)`
    are taken in closed form, not by sampling. With :math:`\tilde\mu_t=c_0x_0+c_tx_t`
    and a reverse kernel :math:`\mathcal N(A_tx_t+b_t,S_t)`, the mean difference is
    affine in :math:`x_t`, :math:`d=(c_tI-A_t)x_t+c_0x_0-b_t`, so

    .. math::
        \mathbb E\,\mathrm{KL}=\mathrm{KL}\big(\mathcal N(\tilde\mu_t(\bar x_t),\tilde\sigma_t^2I)\,\|\,
        \mathcal N(A_t\bar x_t+b_t,S_t)\big)+\tfrac12(1-\bar\alpha_t)\,
        \mathrm{tr}\big(S_t^{-1}(c_tI-A_t)(c_tI-A_t)^\top\big),

    with the KL from :func:`~vi_helpers.kl.kl_full_normal`; the decoder term is
    :math:`\log\mathcal N(x_0;A_1\bar x_1+b_1,S_1)-\tfrac12(1-\bar\alpha_1)\mathrm{tr}(S_1^{-1}A_1A_1^\top)`.

    Args:
        x0: ``(B, D)`` points.
        mean, cov: the data distribution :math:`\mathcal N(\mu_{\mathrm{data}},C)`, ``(D,)`` and ``(D, D)``.
        alpha: ``(T,)`` schedule.
        prior: :math:`p(x_T)`: ``"marginal"`` :math:`q(x_T)=\mathcal N(\sqrt{\bar\alpha_T}\mu_{\mathrm{data}},C_T)`,
            ``"standard"`` :math:`\mathcal N(0,I)`, or ``"learned_mean"``
            :math:`\mathcal N(\sqrt{\bar\alpha_T}\mu_{\mathrm{data}},I)` (the best mean of a unit-covariance prior).
        reverse: :math:`S_t`: ``"optimal"`` :math:`\Sigma_t` (see
            :func:`gaussian_reverse_kernels`), or ``"posterior"`` / ``"forward"``:
            :math:`\sigma_t^2I` from :func:`~vi_helpers.diffusion.reverse_variance`, the
            fixed variances of :class:`~vi_helpers.diffusion.GaussianDiffusion`. The
            means are optimal (:math:`A_tx_t+b_t`) in every case.

    Returns:
        ``(elbo, terms)``: ``(B,)`` in nats, and ``{"prior": (B,), "kl": (B, T - 1),
        "log_lik": (B,)}`` as in :meth:`GaussianDiffusion.elbo_terms`. With the
        defaults ``elbo`` equals :math:`\log\mathcal N(x_0;\mu_{\mathrm{data}},C)`.
    """
    prior = check_choice("prior", prior, PRIORS)
    reverse = check_choice("reverse", reverse, REVERSES)
    _check_gaussian(mean, cov)
    check_tensor("x0", x0, ndim=2, last_dim=mean.shape[0])
    a_mat, b, sigma = gaussian_reverse_kernels(mean, cov, alpha)
    alpha = alpha.to(x0.dtype)
    a_bar = alpha_bar(alpha)
    eye = torch.eye(mean.shape[0], dtype=x0.dtype)
    if reverse != "optimal":
        sigma = reverse_variance(alpha, reverse)[:, None, None] * eye
    # all steps at once: x_bar[t - 1] = E[x_t | x0] = sqrt(a_bar_t) x0, shape (T, B, D)
    x_bar = a_bar[1:, None, None].sqrt() * x0
    p_mean = torch.einsum("tij,tbj->tbi", a_mat, x_bar) + b[:, None, :]
    spread = torch.diagonal(torch.linalg.solve(sigma[0], a_mat[0] @ a_mat[0].T)).sum()
    log_lik = _log_normal(x0, p_mean[0], sigma[0]) - 0.5 * (1.0 - a_bar[1]) * spread
    if alpha.shape[0] > 1:
        kl_steps = _expected_step_kls(x0, x_bar, p_mean, a_mat, sigma, alpha)
    else:
        kl_steps = x0.new_zeros(x0.shape[0], 0)
    m_top = a_bar[-1].sqrt() * mean
    c_top = a_bar[-1] * cov + (1.0 - a_bar[-1]) * eye
    p_mean_top, p_cov = {"marginal": (m_top, c_top), "standard": (0.0 * mean, eye),
                         "learned_mean": (m_top, eye)}[prior]
    q_cov_top = ((1.0 - a_bar[-1]) * eye).expand(x0.shape[0], *eye.shape)
    prior_kl = kl_full_normal(x_bar[-1], q_cov_top, p_mean_top.expand_as(x0),
                              p_cov.expand_as(q_cov_top))
    terms = {"prior": prior_kl, "kl": kl_steps, "log_lik": log_lik}
    return log_lik - prior_kl - kl_steps.sum(dim=-1), terms
