r"""Variational free energy, iterative (per-example) inference and the amortization gap.

The *variational free energy* of a distribution :math:`q(z)` for one observation
:math:`x` is the negative ELBO,

.. math::
    F(q) = \mathbb E_q\big[-\log p(x, z)\big] - \mathbb H[q]
         = \mathbb E_q\big[-\log p(x\mid z)\big] + \mathrm{KL}(q\,\|\,p(z))
         = -\log p(x) + \mathrm{KL}\big(q\,\|\,p(z\mid x)\big) \;\ge\; -\log p(x).

"Energy minus entropy" is the first form (Helmholtz's :math:`U - TS` at temperature
1). Minimizing :math:`F` over :math:`q` is variational inference; over the model's
parameters it is learning.

A VAE's encoder *predicts* :math:`q` in one pass (amortized inference). This module
also minimizes :math:`F` for each example separately, by gradient descent on that
example's :math:`(\mu, \log\sigma^2)` with the decoder fixed, and splits the
distance between :math:`\log p(x)` and the encoder's ELBO into two gaps (Cremer,
Li & Duvenaud 2018):

.. math::
    \log p(x) - \mathcal L(q_\phi)
    = \underbrace{\log p(x) - \mathcal L(q^\star)}_{\text{approximation gap}}
    + \underbrace{\mathcal L(q^\star) - \mathcal L(q_\phi)}_{\text{amortization gap}},

where :math:`q^\star` is the best diagonal Gaussian for that example.

Models: anything with ``encode(x) -> (mean, log_var)``, a raw decoder
``decoder(z)`` (means, or logits for a Bernoulli decoder),
``log_likelihood(x, x_hat)`` and a standard-normal prior: a
:class:`~vi_helpers.models.VariationalAutoencoder` or a
:class:`~vi_helpers.models.LinearGaussianVAE`. All values are in nats, per example
(summed over data and latent dimensions).

Shapes: ``B`` examples, ``D`` data dimension, ``L`` latent dimension, ``S`` Monte
Carlo samples, ``K`` importance samples.

References:
    Cremer, Li & Duvenaud (2018), Inference Suboptimality in Variational Autoencoders.
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    Friston (2010), The free-energy principle: a unified brain theory?
    Bogacz (2017), A tutorial on the free-energy framework for modelling perception
    and learning.
"""

from __future__ import annotations

import math

import torch

from ._validate import (
    LOG_2PI,
    check_choice,
    check_generator,
    check_model_input,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_same_dtype,
    check_same_shape,
    check_tensor,
    check_vae,
    eval_mode,
)
from .kl import kl_standard_normal, kl_standard_normal_per_dim

__all__ = ["free_energy", "optimize_local_posterior", "amortization_gap"]


#: Names of the starting points understood by :func:`optimize_local_posterior`.
INITS = ("encoder", "prior")


# -- argument handling ------------------------------------------------------------------------
def _check_q(model: torch.nn.Module, x: torch.Tensor, mu, log_var) -> None:
    check_tensor("mu", mu, ndim=2)
    check_tensor("log_var", log_var, ndim=2)
    want = (x.shape[0], model.latent_size)
    if tuple(mu.shape) != want:
        raise ValueError(f"mu must have shape (B, L) = {want} to match x, got {tuple(mu.shape)}")
    check_same_shape("mu", mu, "log_var", log_var)
    # parameters of q are refused, not cast, when their dtype differs (the dtype rule)
    check_same_dtype("mu", mu, "model", x.dtype)
    check_same_dtype("log_var", log_var, "model", x.dtype)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\mathcal N(z;\mu,\mathrm{diag}\,e^{\log\sigma^2})` summed over the last dim."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-log_var) + LOG_2PI + log_var).sum(dim=-1)


def _expected_log_lik(model, x, mu, log_var, n_samples: int, generator, chunk: int):
    r"""Monte Carlo :math:`\frac1S\sum_s\log p(x\mid z_s)`, :math:`z_s=\mu+\sigma\varepsilon_s`, ``(B,)``.

    The noise is drawn in chunks of ``chunk`` samples (memory ``chunk * B * D``), in
    the order one ``(S, B, L)`` draw would produce when ``chunk >= S``.
    """
    std = torch.exp(0.5 * log_var)
    total = torch.zeros(x.shape[0], dtype=mu.dtype, device=mu.device)
    for start in range(0, n_samples, chunk):
        n = min(chunk, n_samples - start)
        eps = torch.randn((n, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
        z = mu + std * eps  # reparameterized: differentiable in mu and log_var
        x_hat = model.decoder(z)
        total = total + model.log_likelihood(x.expand_as(x_hat), x_hat).sum(dim=0)
    return total / n_samples


# -- the free energy --------------------------------------------------------------------------
def free_energy(
    model: torch.nn.Module,
    x: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Variational free energy :math:`F(q)=-\mathcal L(q)` of :math:`q=\mathcal N(\mu,\mathrm{diag}\,\sigma^2)`, ``(B,)``.

    .. math::
        \hat F = -\frac1S\sum_{s=1}^S\log p(x\mid z_s)
                 + \mathrm{KL}\big(\mathcal N(\mu,\mathrm{diag}\,\sigma^2)\,\|\,\mathcal N(0,I)\big),
        \qquad z_s=\mu+\sigma\odot\varepsilon_s,\ \varepsilon_s\sim\mathcal N(0,I).

    The KL is in closed form, so only the reconstruction term is estimated; the
    estimate is unbiased for :math:`F(q)\ge-\log p(x)`. The samples are
    reparameterized, so ``F`` is differentiable in ``mu``, ``log_var`` and the
    model's parameters (this function does not switch off gradients). With the
    encoder's ``(mu, log_var)`` and the same ``generator`` state it equals
    ``-model.elbo(x, n_samples=S, generator=...)`` of a
    :class:`~vi_helpers.models.VariationalAutoencoder`.

    Args:
        model: a VAE (see the module docstring); its decoder defines
            :math:`p(x\mid z)` and the prior is :math:`\mathcal N(0, I)`.
        x: ``(B, D)`` observations.
        mu: ``(B, L)`` means of ``q``, one row per example.
        log_var: ``(B, L)`` log-variances of ``q``.
        n_samples: ``S`` Monte Carlo samples per example (> 0).
        generator: optional ``torch.Generator`` for repeatable noise.

    Returns:
        ``(B,)`` free energy per example, in nats.
    """
    model = check_vae(model)
    x = check_model_input(model, x)
    _check_q(model, x, mu, log_var)
    n_samples = check_positive_int("n_samples", n_samples)
    check_generator(generator)
    expected_ll = _expected_log_lik(model, x, mu, log_var, n_samples, generator, n_samples)
    return kl_standard_normal(mu, log_var) - expected_ll


# -- iterative inference ----------------------------------------------------------------------
def optimize_local_posterior(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    init: str = "encoder",
    n_steps: int = 300,
    learning_rate: float = 0.05,
    n_samples: int = 8,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    r"""Minimize each example's free energy over its own :math:`(\mu, \log\sigma^2)`, decoder fixed.

    For every row :math:`x_b` this searches the best diagonal Gaussian

    .. math::
        q_b^\star = \arg\min_{\mu_b,\log\sigma_b^2} F(q_b; x_b)
        = \arg\max\ \mathbb E_{q_b}\log p(x_b\mid z) - \mathrm{KL}(q_b\,\|\,\mathcal N(0, I)),

    by Adam on the reparameterized estimate of :func:`free_energy` with
    ``n_samples`` fresh samples per step ("iterative" or "non-amortized"
    inference, as in classic VI and predictive-coding models of perception). The
    rows do not interact: the objective is the sum of the rows' free energies and
    Adam's update is elementwise, so optimizing a batch is optimizing each row.
    The step size follows a cosine schedule from ``learning_rate`` to 0, so the
    Monte Carlo noise in the gradients averages out at the end (Robbins & Monro).

    The model is not changed: gradients are taken with respect to ``mu`` and
    ``log_var`` only (the parameters' ``.grad`` are left as they were), the model
    is in evaluation mode during the search and its mode is restored.

    Args:
        model: a VAE (see the module docstring).
        x: ``(B, D)`` observations.
        init: ``"encoder"`` starts from the encoder's prediction
            :math:`q_\phi(z\mid x)` (refining it, as semi-amortized VI does);
            ``"prior"`` starts from :math:`\mathcal N(0, I)` (no amortization).
        n_steps: number of Adam steps (>= 0; 0 returns the starting point).
        learning_rate: Adam's initial step size (> 0).
        n_samples: Monte Carlo samples per example and step (> 0).
        seed: seed of the noise (an int >= 0). A run is repeatable and the global
            random number generator is not touched.

    Returns:
        ``(mu, log_var, history)``: the optimized ``(B, L)`` means and
        log-variances (detached), and a list of ``n_steps`` floats, the Monte
        Carlo estimate of the mean free energy over the batch at each step,
        before that step's update. If the search diverges (too large a
        ``learning_rate``) it stops with the last finite ``(mu, log_var)`` and a
        message, and the history is shorter.
    """
    model = check_vae(model)
    x = check_model_input(model, x)
    init = check_choice("init", init, INITS)
    n_steps = check_nonnegative_int("n_steps", n_steps)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    n_samples = check_positive_int("n_samples", n_samples)
    seed = check_nonnegative_int("seed", seed)
    generator = torch.Generator(device=x.device).manual_seed(seed)

    with eval_mode(model):
        if init == "encoder":
            with torch.no_grad():
                mu0, log_var0 = model.encode(x)
        else:
            mu0 = torch.zeros(x.shape[0], model.latent_size, dtype=x.dtype, device=x.device)
            log_var0 = torch.zeros_like(mu0)
        mu = mu0.detach().clone().requires_grad_(True)
        log_var = log_var0.detach().clone().requires_grad_(True)
        # A private optimizer over mu and log_var only: the decoder's weights stay fixed.
        optimizer = torch.optim.Adam([mu, log_var], lr=learning_rate)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(n_steps, 1))
        history: list[float] = []
        last_good = (mu.detach().clone(), log_var.detach().clone())
        for step in range(n_steps):
            with torch.no_grad():  # a diverged q would reach the decoder's check on z
                finite_q = bool(torch.isfinite(mu).all() & torch.isfinite(log_var.exp()).all())
            if finite_q:
                expected_ll = _expected_log_lik(
                    model, x, mu, log_var, n_samples, generator, n_samples
                )
                F = kl_standard_normal_per_dim(mu, log_var).sum(dim=-1) - expected_ll  # (B,)
            value = float(F.detach().mean()) if finite_q else math.nan
            if not math.isfinite(value):
                print(f"optimize_local_posterior diverged at step {step}: mean free energy = "
                      f"{value}. Stopped and kept the last finite (mu, log_var); try a "
                      "smaller learning_rate.")
                return last_good[0], last_good[1], history
            history.append(value)
            last_good = (mu.detach().clone(), log_var.detach().clone())
            # autograd.grad, not backward(): nothing accumulates in the model's .grad
            grad_mu, grad_log_var = torch.autograd.grad(F.sum(), [mu, log_var])
            mu.grad, log_var.grad = grad_mu, grad_log_var
            optimizer.step()
            scheduler.step()
    return mu.detach(), log_var.detach(), history


# -- the amortization gap ---------------------------------------------------------------------
def _log_px_mixture(model, x, q1, q2, k: int, generator, chunk: int) -> torch.Tensor:
    r"""IWAE estimate of :math:`\log p(x)` with the mixture proposal of ``q1`` and ``q2``, ``(B,)``.

    ``k1 = k // 2`` samples come from ``q1`` and ``k2 = k - k1`` from ``q2``; every
    weight uses the mixture density :math:`(k_1q_1+k_2q_2)/k` (the "balance
    heuristic" of multiple importance sampling), which makes
    :math:`\frac1k\sum_i p(x,z_i)/q_{\rm mix}(z_i)` unbiased for :math:`p(x)`, so its
    log is a lower bound in expectation (Jensen) that tightens as ``k`` grows.
    """
    k1 = k // 2
    k2 = k - k1
    log_frac = [math.log(k1 / k) if k1 else -math.inf, math.log(k2 / k)]
    log_sum = torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
    for (mu, log_var), n_total in zip((q1, q2), (k1, k2), strict=True):
        std = torch.exp(0.5 * log_var)
        for start in range(0, n_total, chunk):
            n = min(chunk, n_total - start)
            eps = torch.randn((n, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
            z = mu + std * eps  # (n, B, L)
            x_hat = model.decoder(z)
            log_joint = model.log_likelihood(x.expand_as(x_hat), x_hat) - 0.5 * (
                z.pow(2) + LOG_2PI
            ).sum(dim=-1)
            log_q_mix = torch.logaddexp(
                log_frac[0] + _log_normal(z, *q1), log_frac[1] + _log_normal(z, *q2)
            )
            log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_joint - log_q_mix, dim=0))
    return log_sum - math.log(k)


def amortization_gap(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    k: int = 1000,
    n_steps: int = 300,
    learning_rate: float = 0.05,
    n_samples: int = 8,
    n_eval_samples: int = 1000,
    seed: int = 0,
    chunk_size: int = 100,
    reduction: str = "mean",
) -> dict:
    r"""Split the encoder's inference gap into approximation and amortization gaps.

    .. math::
        \underbrace{\log p(x)-\mathcal L(q_\phi)}_{\text{inference gap}}
        = \underbrace{\log p(x)-\mathcal L(q^\star)}_{\text{approximation gap}}
        + \underbrace{\mathcal L(q^\star)-\mathcal L(q_\phi)}_{\text{amortization gap}}
        \qquad\text{(Cremer, Li \& Duvenaud 2018).}

    * :math:`q_\phi` is the encoder's prediction :math:`\mathcal N(\mu_\phi(x),\mathrm{diag}\,\sigma^2_\phi(x))`.
    * :math:`q^\star` is the best diagonal Gaussian for each example, found by
      :func:`optimize_local_posterior` started at the encoder (``n_steps``,
      ``learning_rate``, ``n_samples``).
    * Both ELBOs are estimated with ``n_eval_samples`` samples and the closed-form
      KL, using the *same* noise :math:`\varepsilon` for both (common random
      numbers), so their difference is much more precise than either value.
    * :math:`\log p(x)` is estimated by importance sampling with ``k`` samples
      (Burda et al. 2016). The proposal is the equal mixture of :math:`q_\phi`
      and :math:`q^\star` (half of the samples from each, weighted by the
      mixture density), which is never much worse than the better of the two.
      Like every IWAE estimate it is a lower bound in expectation, so with too
      small a ``k`` the approximation gap is underestimated (it can even come out
      slightly negative).

    The amortization gap of an example is :math:`\ge 0` in exact arithmetic (the
    encoder's :math:`q` is one of the Gaussians :math:`q^\star` beats); small
    negative estimates come from Monte Carlo noise or an optimization stopped
    short.

    Args:
        model: a VAE (see the module docstring).
        x: ``(B, D)`` observations.
        k: importance samples per example for :math:`\log p(x)` (> 0).
        n_steps, learning_rate, n_samples: passed to :func:`optimize_local_posterior`.
        n_eval_samples: Monte Carlo samples per example for the two ELBOs (> 0).
        seed: an int >= 0; seeds the optimization and the evaluation noise. The
            global random number generator is not touched.
        chunk_size: Monte Carlo or importance samples per chunk when evaluating
            (memory ``chunk_size * B * D``; the estimates do not depend on it except
            through the random numbers drawn).
        reduction: ``"mean"`` returns floats averaged over the ``B`` examples,
            ``"none"`` returns ``(B,)`` tensors.

    Returns:
        A dict with ``"log_px"``, ``"elbo_local"`` (:math:`\mathcal L(q^\star)`),
        ``"elbo_encoder"`` (:math:`\mathcal L(q_\phi)`), ``"approximation_gap"``,
        ``"amortization_gap"`` and ``"inference_gap"`` (the sum of the two), in nats.
    """
    model = check_vae(model)
    x = check_model_input(model, x)
    k = check_positive_int("k", k)
    n_eval_samples = check_positive_int("n_eval_samples", n_eval_samples)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    seed = check_nonnegative_int("seed", seed)
    reduction = check_choice("reduction", reduction, ("mean", "none"))

    mu_star, log_var_star, _ = optimize_local_posterior(
        model, x, init="encoder", n_steps=n_steps, learning_rate=learning_rate,
        n_samples=n_samples, seed=seed,
    )
    with eval_mode(model), torch.no_grad():
        mu_enc, log_var_enc = model.encode(x)

        def elbo_of(mu, log_var):
            # the same seed for both q: common random numbers
            gen = torch.Generator(device=x.device).manual_seed(seed + 1)
            expected_ll = _expected_log_lik(
                model, x, mu, log_var, n_eval_samples, gen, chunk_size
            )
            return expected_ll - kl_standard_normal(mu, log_var)

        elbo_encoder = elbo_of(mu_enc, log_var_enc)
        elbo_local = elbo_of(mu_star, log_var_star)
        gen = torch.Generator(device=x.device).manual_seed(seed + 2)
        log_px = _log_px_mixture(
            model, x, (mu_enc, log_var_enc), (mu_star, log_var_star), k, gen, chunk_size
        )
    out = {
        "log_px": log_px,
        "elbo_local": elbo_local,
        "elbo_encoder": elbo_encoder,
        "approximation_gap": log_px - elbo_local,
        "amortization_gap": elbo_local - elbo_encoder,
        "inference_gap": log_px - elbo_encoder,
    }
    if reduction == "mean":
        return {name: float(value.mean()) for name, value in out.items()}
    return out


# -- expected free energy (active inference) --------------------------------------------------
def expected_free_energy(
    q_s: torch.Tensor, likelihood: torch.Tensor, log_preferences: torch.Tensor
) -> dict[str, torch.Tensor]:
    r"""Expected free energy of an action in a discrete world: risk plus ambiguity.

    An agent believes that after an action the hidden state is distributed as
    :math:`q(s)` and that a state emits an observation with probability
    :math:`p(o\mid s)`; its *preferences* are a distribution :math:`\tilde p(o)`
    over observations. The expected free energy of the action (Friston et al. 2015;
    Da Costa et al. 2020) is

    .. math::
        G = \mathbb E_{q(o,s)}\big[\log q(s) - \log q(s\mid o) - \log\tilde p(o)\big]
          = \underbrace{\mathrm{KL}\big(q(o)\,\|\,\tilde p(o)\big)}_{\text{risk}}
          + \underbrace{\mathbb E_{q(s)}\,\mathbb H\big[p(o\mid s)\big]}_{\text{ambiguity}},

    with the predicted observations :math:`q(o)=\sum_s q(s)\,p(o\mid s)` and
    :math:`q(o,s)=q(s)\,p(o\mid s)`. Risk is the divergence of what the agent
    expects to see from what it prefers to see; ambiguity is how unpredictable the
    observation stays even when the state is known. Active inference chooses the
    action with the smallest :math:`G`.

    Args:
        q_s: ``(..., S)`` predicted state probabilities (non-negative, summing to 1).
        likelihood: ``(..., S, O)`` observation probabilities :math:`p(o\mid s)`, each
            row a distribution over the ``O`` observations; batch dimensions (one per
            action, say) broadcast with ``q_s``'s.
        log_preferences: ``(O,)`` or ``(..., O)`` log-probabilities :math:`\log\tilde p(o)`
            (``-inf`` allowed where ``q(o) = 0``).

    Returns:
        ``{"risk", "ambiguity", "efe"}``: tensors of the batch shape, in nats, with
        ``efe = risk + ambiguity``.

    References:
        Friston, Rigoli, Ognibene, Mathys, Fitzgerald & Pezzulo (2015), Active inference
        and epistemic value. Da Costa, Parr, Sajid, Veselic, Neacsu & Friston (2020),
        Active inference on discrete state-spaces: a synthesis.
    """
    check_tensor("q_s", q_s, ndim=range(1, 8), nonnegative=True)
    check_tensor("likelihood", likelihood, ndim=range(2, 9), nonnegative=True)
    check_tensor("log_preferences", log_preferences, ndim=range(1, 8), finite=False)
    if likelihood.shape[-2] != q_s.shape[-1]:
        raise ValueError(
            f"likelihood must have shape (..., S, O) with S = {q_s.shape[-1]} (the size of q_s), "
            f"got {tuple(likelihood.shape)}"
        )
    if log_preferences.shape[-1] != likelihood.shape[-1]:
        raise ValueError(
            f"log_preferences must have last dimension O = {likelihood.shape[-1]}, "
            f"got shape {tuple(log_preferences.shape)}"
        )
    distributions = (
        ("q_s", q_s), ("likelihood", likelihood), ("exp(log_preferences)", log_preferences.exp())
    )
    for name, p in distributions:
        if not torch.allclose(p.sum(-1), torch.ones((), dtype=p.dtype), atol=1e-6):
            raise ValueError(f"{name} must sum to 1 over its last dimension")
    q_o = (q_s.unsqueeze(-1) * likelihood).sum(dim=-2)  # (..., O) predicted observations
    # 0 log 0 = 0: observations (or states' outcomes) with probability 0 contribute nothing
    risk = torch.where(q_o > 0, q_o * (q_o.log() - log_preferences), torch.zeros_like(q_o)).sum(-1)
    plogp = torch.where(likelihood > 0, likelihood * likelihood.log(), torch.zeros_like(likelihood))
    entropy = -plogp.sum(-1)  # (..., S) entropy of p(o | s) for each state
    ambiguity = (q_s * entropy).sum(-1)
    return {"risk": risk, "ambiguity": ambiguity, "efe": risk + ambiguity}


__all__ += ["expected_free_energy"]
