r"""Evaluating a trained VAE: likelihood estimates, active units, per-dimension KL.

The ELBO is a *lower bound* on :math:`\log p(x)`; how loose it is depends on
the encoder. To compare models we want :math:`\log p(x)` itself, which no VAE
gives in closed form. Importance sampling with the encoder as proposal gives a
family of tighter bounds (Burda et al. 2016),

.. math::
    \mathcal L_K(x) = \mathbb E_{z_1..z_K\sim q(z\mid x)}
    \log\frac1K\sum_{k=1}^K \frac{p(x\mid z_k)\,p(z_k)}{q(z_k\mid x)},
    \qquad \mathcal L_1 = \mathrm{ELBO}\le\mathcal L_K\le\mathcal L_{K+1}\le\log p(x),

with :math:`\mathcal L_K\to\log p(x)` as :math:`K\to\infty`. With ``K = 1000``
this is the usual "test log-likelihood" of VAE papers.

Every function takes a model with ``encode(x) -> (mean, log_var)``, a raw
decoder ``decoder(z)`` (means, or logits for a Bernoulli decoder) and
``log_likelihood(x, x_hat)``: :class:`~vi_helpers.models.VariationalAutoencoder`
(all likelihoods) and :class:`~vi_helpers.models.LinearGaussianVAE`. Functions
run under ``torch.no_grad()`` with the model in evaluation mode and restore its
previous mode. Results are in nats, per example (summed over data and latent
dimensions) unless a docstring says "mean".

Shapes: ``B`` or ``N`` examples, ``D`` data dimension, ``L`` latent dimension,
``K`` importance samples.

References:
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    Kingma & Welling (2014), Auto-Encoding Variational Bayes.
    Lucas, Tucker, Grosse & Norouzi (2019), Don't Blame the ELBO!
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._validate import (
    LOG_2PI,
    check_generator,
    check_model_input,
    check_nonnegative_float,
    check_positive_int,
    check_tensor,
    check_vae,
    check_weights,
    eval_mode,
)
from .kl import kl_standard_normal_per_dim

__all__ = [
    "log_likelihood_is",
    "iwae_curve",
    "active_units",
    "kl_per_dimension",
    "reconstruction_error",
    "elbo",
]

# -- importance-sampled log-likelihood -------------------------------------------------------
def _log_weights(model, x, mean, log_var, n: int, generator) -> torch.Tensor:
    r"""``(n, B)`` log-weights :math:`\log p(x\mid z)+\log p(z)-\log q(z\mid x)`, ``z ~ q``."""
    eps = torch.randn(
        (n, *mean.shape), dtype=mean.dtype, device=mean.device, generator=generator
    )
    z = mean + torch.exp(0.5 * log_var) * eps  # (n, B, L)
    x_hat = model.decoder(z)  # raw output: means, or logits for Bernoulli
    log_lik = model.log_likelihood(x.expand_as(x_hat), x_hat)  # (n, B)
    log_prior = -0.5 * (z.pow(2) + LOG_2PI).sum(dim=-1)
    # log N(z; mean, sigma^2) written with eps = (z - mean) / sigma, which is exact
    log_q = -0.5 * (eps.pow(2) + LOG_2PI + log_var).sum(dim=-1)
    return log_lik + log_prior - log_q


def log_likelihood_is(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    k: int = 1000,
    chunk_size: int = 100,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Importance-sampled estimate of :math:`\log p(x)`: the IWAE bound with ``k`` samples.

    .. math::
        \hat{\mathcal L}_K(x) = \log\frac1K\sum_{k=1}^K w_k,\qquad
        \log w_k = \log p(x\mid z_k) + \log\mathcal N(z_k;0,I)
        - \log q(z_k\mid x),\quad z_k\sim q(z\mid x),

    with the encoder :math:`q(z\mid x)=\mathcal N(\mu(x),\mathrm{diag}\,\sigma^2(x))`
    as proposal (Burda et al. 2016). In expectation it is a lower bound that
    rises with ``k`` to :math:`\log p(x)`; ``k=1`` is a single-sample ELBO (with
    a Monte Carlo KL). ``log p(x|z)`` is ``model.log_likelihood``, in nats with
    all constants, so for ``likelihood="mse"`` it is the Gaussian with variance
    1/2 implied by the seed's loss.

    The ``k`` samples are drawn in chunks of ``chunk_size`` and combined with a
    running ``logaddexp``, so memory grows with ``chunk_size * B * D``, not
    ``k * B * D``; the result does not depend on the chunking except through the
    random numbers drawn.

    Args:
        model: a :class:`~vi_helpers.models.VariationalAutoencoder` or
            :class:`~vi_helpers.models.LinearGaussianVAE`.
        x: ``(B, D)`` data.
        k: number of importance samples ``K`` per example (> 0).
        chunk_size: importance samples per chunk (> 0); it sets the memory, not
            the estimate (``batch_size`` always means rows per minibatch).
        generator: optional ``torch.Generator`` for repeatable samples (otherwise
            the global RNG is used).

    Returns:
        ``(B,)`` estimates of :math:`\log p(x)`, nats.
    """
    model = check_vae(model)
    x = check_model_input(model, x)
    k = check_positive_int("k", k)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    check_generator(generator)
    with eval_mode(model), torch.no_grad():
        mean, log_var = model.encode(x)
        log_sum = torch.full(mean.shape[:-1], -math.inf, dtype=mean.dtype, device=mean.device)
        for start in range(0, k, chunk_size):
            n = min(chunk_size, k - start)
            log_w = _log_weights(model, x, mean, log_var, n, generator)
            # log sum_k w_k accumulated chunk by chunk, stably
            log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_w, dim=0))
        return log_sum - math.log(k)


def iwae_curve(
    model: torch.nn.Module,
    x: torch.Tensor,
    ks: Sequence[int] = (1, 10, 100, 1000),
    *,
    generator: torch.Generator | None = None,
    chunk_size: int = 100,
) -> dict[int, float]:
    r"""Mean IWAE bound :math:`\frac1B\sum_b\hat{\mathcal L}_K(x_b)` for each ``K`` in ``ks``.

    Each ``K`` uses fresh samples. In expectation the values increase with ``K``
    towards the average :math:`\log p(x)`; the gap between ``K=1`` and large
    ``K`` measures how much the ELBO underestimates the log-likelihood.

    Args:
        model, x, generator, chunk_size: as in :func:`log_likelihood_is`.
        ks: a non-empty sequence of sample counts (positive ints).

    Returns:
        ``{K: mean bound}`` (Python floats, nats per example), in the order of ``ks``.
    """
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) or len(ks) == 0:
        raise ValueError(f"ks must be a non-empty sequence of positive ints, got {ks!r}")
    ks = [check_positive_int("ks", kk) for kk in ks]
    return {
        kk: float(
            log_likelihood_is(model, x, k=kk, chunk_size=chunk_size, generator=generator).mean()
        )
        for kk in ks
    }


# -- latent-space diagnostics ----------------------------------------------------------------
def active_units(
    model_or_means, x: torch.Tensor | None = None, *, threshold: float = 0.01
) -> tuple[int, torch.Tensor]:
    r"""Number of *active* latent units (Burda et al. 2016, section 5.2).

    .. math::
        A_u = \mathrm{Cov}_x\big(\mathbb E_{q(z\mid x)}[z_u]\big) > \delta,
        \qquad\delta = 0.01.

    A unit whose encoder mean barely moves with ``x`` carries no information
    about ``x``: the decoder ignores it (posterior collapse). The variance is
    the population variance over the ``N`` examples (divisor ``N``).

    Args:
        model_or_means: a model with ``encode`` (then ``x`` is required) or a
            ``(N, L)`` tensor of encoder means (then ``x`` must be ``None``).
        x: ``(N, D)`` data, when a model is given.
        threshold: ``delta`` (>= 0); a unit is active when its variance is
            strictly greater.

    Returns:
        ``(count, variances)``: the number of active units (int) and the ``(L,)``
        variance of each unit's mean over the data.
    """
    threshold = check_nonnegative_float("threshold", threshold)
    if isinstance(model_or_means, torch.Tensor):
        if x is not None:
            raise ValueError("x must be None when model_or_means is a tensor of means")
        means = check_tensor("model_or_means", model_or_means, ndim=2)
    elif isinstance(model_or_means, torch.nn.Module):
        if not hasattr(model_or_means, "encode"):
            raise TypeError("model_or_means must have an encode(x) method")
        if x is None:
            raise ValueError("x must be given when model_or_means is a model")
        check_weights(model_or_means, "model_or_means")
        x = check_model_input(model_or_means, x)
        with eval_mode(model_or_means), torch.no_grad():
            means = model_or_means.encode(x)[0]
    else:
        raise TypeError(
            "model_or_means must be a model or a (N, L) tensor of encoder means, "
            f"got {type(model_or_means).__name__}"
        )
    if means.shape[0] < 2:
        raise ValueError(
            f"model_or_means: need at least 2 examples to measure a variance, "
            f"got means of shape {tuple(means.shape)}"
        )
    variances = means.var(dim=0, correction=0)
    return int((variances > threshold).sum()), variances


def kl_per_dimension(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""Average KL of each latent unit from the prior, over the data.

    .. math::
        \mathrm{KL}_u = \frac1N\sum_{n=1}^N
        \mathrm{KL}\big(q(z_u\mid x_n)\,\|\,\mathcal N(0,1)\big)
        = \frac1N\sum_n\tfrac12\big(\mu_{nu}^2+\sigma_{nu}^2-1-\log\sigma_{nu}^2\big).

    The entries sum to the average KL term of the ELBO. A unit with KL near 0
    has collapsed to the prior.

    Args:
        model: a model with ``encode``.
        x: ``(N, D)`` data.

    Returns:
        ``(L,)`` nats.
    """
    model = check_vae(model)
    x = check_model_input(model, x)
    with eval_mode(model), torch.no_grad():
        mean, log_var = model.encode(x)
        return kl_standard_normal_per_dim(mean, log_var).mean(dim=0)


def reconstruction_error(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    r"""Reconstruct each ``x`` through the encoder *mean* and report the error.

    With :math:`\hat x = \mathrm{decode}(\mu(x))` (the mean image: the sigmoid
    of the logits for a Bernoulli decoder):

    * ``"mse"``: :math:`\frac1N\sum_n\sum_d (x_{nd}-\hat x_{nd})^2`, the summed
      squared error averaged over examples;
    * ``"log_lik"``: :math:`\frac1N\sum_n \log p(x_n\mid z=\mu(x_n))`, nats, from
      ``model.log_likelihood`` (constants included).

    Args:
        model: a model with ``encode``, ``decoder``, ``log_likelihood``.
        x: ``(N, D)`` data.

    Returns:
        ``{"mse": float, "log_lik": float}``.
    """
    model = check_vae(model)
    x = check_model_input(model, x)
    with eval_mode(model), torch.no_grad():
        mean, _ = model.encode(x)
        raw = model.decoder(mean)
        x_mean = torch.sigmoid(raw) if getattr(model, "likelihood", None) == "bernoulli" else raw
        mse = (x - x_mean).pow(2).sum(dim=-1).mean()
        log_lik = model.log_likelihood(x, raw).mean()
    return {"mse": float(mse), "log_lik": float(log_lik)}


def elbo(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Per-example ELBO :math:`\mathbb E_q\log p(x\mid z)-\mathrm{KL}(q(z\mid x)\,\|\,p(z))`, ``(B,)``.

    For a :class:`~vi_helpers.models.LinearGaussianVAE` the expectation is done
    in closed form (``analytic_elbo``; ``n_samples`` and ``generator`` are then
    unused). Otherwise it is ``model.elbo``: a Monte Carlo average over
    ``n_samples`` draws of the reconstruction term with the analytic KL.

    Args:
        model: a VAE.
        x: ``(B, D)`` data.
        n_samples: Monte Carlo samples per example (> 0).
        generator: optional ``torch.Generator``.

    Returns:
        ``(B,)`` nats.
    """
    model = check_vae(model)
    x = check_model_input(model, x)
    n_samples = check_positive_int("n_samples", n_samples)
    check_generator(generator)
    with eval_mode(model), torch.no_grad():
        if hasattr(model, "analytic_elbo"):
            return model.analytic_elbo(x)
        return model.elbo(x, n_samples=n_samples, generator=generator)
