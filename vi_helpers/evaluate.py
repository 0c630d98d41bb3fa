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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from ._validate import check_nonnegative_float, check_positive_int, check_tensor
from .kl import kl_standard_normal_per_dim

__all__ = [
    "log_likelihood_is",
    "iwae_curve",
    "active_units",
    "kl_per_dimension",
    "reconstruction_error",
    "elbo",
]

LOG_2PI = math.log(2.0 * math.pi)


# -- shared argument handling ---------------------------------------------------------------
def _check_model(model) -> torch.nn.Module:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for attr in ("encode", "decoder", "log_likelihood"):
        if not hasattr(model, attr):
            raise TypeError(
                f"model must have encode(x), decoder(z) and log_likelihood(x, x_hat) "
                f"(a VariationalAutoencoder or LinearGaussianVAE); it has no {attr!r}"
            )
    return model


def _check_x(model: torch.nn.Module, x) -> torch.Tensor:
    """Validate ``x (B, D)`` and move it to the model's dtype and device."""
    check_tensor("x", x, ndim=2)
    input_size = getattr(model, "input_size", None)
    if input_size is not None and x.shape[-1] != input_size:
        raise ValueError(
            f"x must have shape (B, {input_size}) (the model's input_size), "
            f"got {tuple(x.shape)}"
        )
    p = next(model.parameters(), None)
    return x if p is None else x.to(device=p.device, dtype=p.dtype)


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


@contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    """``no_grad`` and ``eval()`` for the block; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


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
    batch_size: int = 100,
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

    The ``k`` samples are drawn in chunks of ``batch_size`` and combined with a
    running ``logaddexp``, so memory grows with ``batch_size * B * D``, not
    ``k * B * D``; the result does not depend on the chunking except through the
    random numbers drawn.

    Args:
        model: a :class:`~vi_helpers.models.VariationalAutoencoder` or
            :class:`~vi_helpers.models.LinearGaussianVAE`.
        x: ``(B, D)`` data.
        k: number of importance samples ``K`` per example (> 0).
        batch_size: importance samples per chunk (> 0).
        generator: optional ``torch.Generator`` for repeatable samples (otherwise
            the global RNG is used).

    Returns:
        ``(B,)`` estimates of :math:`\log p(x)`, nats.
    """
    model = _check_model(model)
    x = _check_x(model, x)
    k = check_positive_int("k", k)
    batch_size = check_positive_int("batch_size", batch_size)
    _check_generator(generator)
    with _evaluating(model):
        mean, log_var = model.encode(x)
        log_sum = torch.full(mean.shape[:-1], -math.inf, dtype=mean.dtype, device=mean.device)
        for start in range(0, k, batch_size):
            n = min(batch_size, k - start)
            log_w = _log_weights(model, x, mean, log_var, n, generator)
            # log sum_k w_k accumulated chunk by chunk, stably
            log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_w, dim=0))
        return log_sum - math.log(k)


def iwae_curve(
    model: torch.nn.Module,
    x: torch.Tensor,
    ks: Sequence[int] = (1, 10, 100, 1000),
    generator: torch.Generator | None = None,
    *,
    batch_size: int = 100,
) -> dict[int, float]:
    r"""Mean IWAE bound :math:`\frac1B\sum_b\hat{\mathcal L}_K(x_b)` for each ``K`` in ``ks``.

    Each ``K`` uses fresh samples. In expectation the values increase with ``K``
    towards the average :math:`\log p(x)`; the gap between ``K=1`` and large
    ``K`` measures how much the ELBO underestimates the log-likelihood.

    Args:
        model, x, generator, batch_size: as in :func:`log_likelihood_is`.
        ks: a non-empty sequence of sample counts (positive ints).

    Returns:
        ``{K: mean bound}`` (Python floats, nats per example), in the order of ``ks``.
    """
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) or len(ks) == 0:
        raise ValueError(f"ks must be a non-empty sequence of positive ints, got {ks!r}")
    ks = [check_positive_int("ks", kk) for kk in ks]
    return {
        kk: float(
            log_likelihood_is(model, x, k=kk, batch_size=batch_size, generator=generator).mean()
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
        x = _check_x(model_or_means, x)
        with _evaluating(model_or_means):
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
    model = _check_model(model)
    x = _check_x(model, x)
    with _evaluating(model):
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
    model = _check_model(model)
    x = _check_x(model, x)
    with _evaluating(model):
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
    model = _check_model(model)
    x = _check_x(model, x)
    n_samples = check_positive_int("n_samples", n_samples)
    _check_generator(generator)
    with _evaluating(model):
        if hasattr(model, "analytic_elbo"):
            return model.analytic_elbo(x)
        return model.elbo(x, n_samples=n_samples, generator=generator)
