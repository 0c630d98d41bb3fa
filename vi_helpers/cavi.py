r"""Mean-field variational inference by coordinate ascent (CAVI), with an exact reference.

The model is the univariate Gaussian with unknown mean :math:`\mu` and precision
:math:`\tau` under its conjugate Normal-Gamma prior (Bishop 2006, section 10.1.3):

.. math::
    \tau\sim\mathrm{Gamma}(a_0, b_0),\qquad
    \mu\mid\tau\sim\mathcal N\big(\mu_0, (\lambda_0\tau)^{-1}\big),\qquad
    x_n\mid\mu,\tau\sim\mathcal N(\mu, \tau^{-1}),\ n=1..N.

``Gamma(a, b)`` has shape ``a`` and **rate** ``b`` (mean ``a/b``), as in Bishop
and ``torch.distributions.Gamma``.

Because the prior is conjugate, the posterior is again Normal-Gamma and the
evidence :math:`p(x)` has a closed form: this is the ground truth against which
the mean-field approximation :math:`q(\mu,\tau)=q(\mu)\,q(\tau)` is judged.

CAVI alternates the two optimal-factor updates (Bishop eqs. 10.26-10.30)

.. math::
    q(\mu)=\mathcal N(\mu_N,\lambda_N^{-1}),\quad
    \mu_N=\frac{\lambda_0\mu_0+N\bar x}{\lambda_0+N},\quad
    \lambda_N=(\lambda_0+N)\,\mathbb E[\tau]

.. math::
    q(\tau)=\mathrm{Gamma}(a_N,b_N),\quad a_N=a_0+\frac{N+1}{2},\quad
    b_N=b_0+\tfrac12\,\mathbb E_{q(\mu)}\Big[\sum_n(x_n-\mu)^2+\lambda_0(\mu-\mu_0)^2\Big]

and each update cannot decrease the ELBO, which :meth:`NormalGammaModel.elbo`
computes in closed form.

All computations are done in float64 (the notebook checks identities to 1e-12);
the parameters of the returned distributions are Python floats.

Notation: the *exact* posterior is written :math:`\mathrm{NG}(m_N,\kappa_N,\alpha_N,\beta_N)`
(Murphy 2007) so it is not confused with the mean-field parameters
:math:`\mu_N,\lambda_N,a_N,b_N` (Bishop 2006).

References:
    Bishop (2006), Pattern Recognition and Machine Learning, section 10.1.3.
    Murphy (2007), Conjugate Bayesian analysis of the Gaussian distribution.
    Blei, Kucukelbir & McAuliffe (2017), Variational Inference: A Review for Statisticians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.distributions import Gamma, Normal, StudentT

from ._validate import (
    LOG_2PI,
    check_finite_float,
    check_positive_float,
    check_positive_int,
    check_tensor,
)

__all__ = [
    "NormalGamma",
    "MeanFieldNormalGamma",
    "CAVIResult",
    "NormalGammaModel",
    "cavi_update_mu",
    "cavi_update_tau",
    "gamma_entropy",
]

DTYPE = torch.float64


def _finite_float(name: str, value) -> float:
    """A finite real number (a one-element tensor is accepted) as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = check_tensor(name, value, finite=False).item()  # meta and float16 refused
    return check_finite_float(name, value)


def _positive(name: str, value) -> float:
    """A finite number > 0 (a one-element tensor is accepted) as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = check_tensor(name, value, finite=False).item()  # meta and float16 refused
    return check_positive_float(name, value)


def _check_x(x) -> torch.Tensor:
    """Observations: a non-empty, finite, floating 1-D tensor, returned as float64."""
    check_tensor("x", x, ndim=1)
    return x.to(DTYPE)


def gamma_entropy(a, b) -> torch.Tensor:
    r"""Entropy of :math:`\mathrm{Gamma}(a, b)` (shape ``a``, rate ``b``), in nats.

    .. math::
        H = a - \log b + \log\Gamma(a) + (1-a)\,\psi(a)

    Args:
        a: shape (> 0), a number or tensor.
        b: rate (> 0), a number or tensor of the same shape.

    Returns:
        Tensor (float64 for numbers) of the broadcast shape.
    """
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, torch.Tensor):
            check_tensor(name, value)  # finite, floating, not empty
        else:
            check_positive_float(name, value)
    a = torch.as_tensor(a, dtype=DTYPE)
    b = torch.as_tensor(b, dtype=DTYPE)
    if bool((a <= 0).any()):
        raise ValueError("a must be > 0")
    if bool((b <= 0).any()):
        raise ValueError("b must be > 0")
    return a - torch.log(b) + torch.lgamma(a) + (1.0 - a) * torch.special.digamma(a)


# -- distributions ----------------------------------------------------------------------


@dataclass(frozen=True)
class NormalGamma:
    r"""The Normal-Gamma distribution :math:`\mathrm{NG}(\mu,\tau\mid m,\kappa,\alpha,\beta)`.

    .. math::
        \tau\sim\mathrm{Gamma}(\alpha,\beta),\qquad \mu\mid\tau\sim\mathcal N\big(m,(\kappa\tau)^{-1}\big)

    ``mu`` and ``tau`` are *dependent*: the spread of ``mu`` shrinks as ``tau``
    grows, which a factorized ``q(mu) q(tau)`` cannot represent. Its marginals:
    :math:`\tau\sim\mathrm{Gamma}(\alpha,\beta)` and
    :math:`\mu\sim\mathrm{St}\big(m,\ \beta/(\alpha\kappa),\ 2\alpha\big)` (Student-t
    with :math:`2\alpha` degrees of freedom and squared scale :math:`\beta/(\alpha\kappa)`),
    so :math:`\mathrm{Var}[\mu]=\beta/(\kappa(\alpha-1))` for :math:`\alpha>1`.

    Attributes:
        m: location of ``mu``.
        kappa: precision multiplier of ``mu`` given ``tau`` (> 0).
        alpha: Gamma shape of ``tau`` (> 0).
        beta: Gamma rate of ``tau`` (> 0).
    """

    m: float
    kappa: float
    alpha: float
    beta: float

    def __post_init__(self):
        _finite_float("m", self.m)
        for name in ("kappa", "alpha", "beta"):
            check_positive_float(name, getattr(self, name))

    def log_prob(self, mu: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Joint log-density at ``mu`` and ``tau`` (> 0), tensors of one shape -> that shape."""
        mu, tau = _mu_tau(mu, tau)
        log_p_tau = Gamma(torch.tensor(self.alpha, dtype=DTYPE),
                          torch.tensor(self.beta, dtype=DTYPE)).log_prob(tau)
        log_p_mu = (0.5 * (math.log(self.kappa) + torch.log(tau) - LOG_2PI)
                    - 0.5 * self.kappa * tau * (mu - self.m) ** 2)
        return log_p_tau + log_p_mu

    def marginal_tau(self) -> Gamma:
        r""":math:`p(\tau)=\mathrm{Gamma}(\alpha,\beta)`."""
        return Gamma(torch.tensor(self.alpha, dtype=DTYPE), torch.tensor(self.beta, dtype=DTYPE))

    def marginal_mu(self) -> StudentT:
        r""":math:`p(\mu)=\mathrm{St}(m,\beta/(\alpha\kappa),2\alpha)`, as a ``StudentT``."""
        scale = math.sqrt(self.beta / (self.alpha * self.kappa))
        return StudentT(torch.tensor(2.0 * self.alpha, dtype=DTYPE),
                        torch.tensor(self.m, dtype=DTYPE), torch.tensor(scale, dtype=DTYPE))

    @property
    def mean_mu(self) -> float:
        return self.m

    @property
    def var_mu(self) -> float:
        r""":math:`\beta/(\kappa(\alpha-1))`; ``inf`` when :math:`\alpha\le 1`."""
        return self.beta / (self.kappa * (self.alpha - 1.0)) if self.alpha > 1 else math.inf

    @property
    def mean_tau(self) -> float:
        return self.alpha / self.beta

    @property
    def var_tau(self) -> float:
        return self.alpha / self.beta**2


@dataclass(frozen=True)
class MeanFieldNormalGamma:
    r"""A factorized :math:`q(\mu,\tau)=\mathcal N(\mu\mid\mu_N,\lambda_N^{-1})\,\mathrm{Gamma}(\tau\mid a_N,b_N)`.

    Attributes:
        mu_N: mean of ``q(mu)``.
        lambda_N: precision of ``q(mu)`` (> 0).
        a_N: shape of ``q(tau)`` (> 0).
        b_N: rate of ``q(tau)`` (> 0).
    """

    mu_N: float
    lambda_N: float
    a_N: float
    b_N: float

    def __post_init__(self):
        _finite_float("mu_N", self.mu_N)
        for name in ("lambda_N", "a_N", "b_N"):
            check_positive_float(name, getattr(self, name))

    def q_mu(self) -> Normal:
        return Normal(torch.tensor(self.mu_N, dtype=DTYPE),
                      torch.tensor(1.0 / math.sqrt(self.lambda_N), dtype=DTYPE))

    def q_tau(self) -> Gamma:
        return Gamma(torch.tensor(self.a_N, dtype=DTYPE), torch.tensor(self.b_N, dtype=DTYPE))

    def log_prob(self, mu: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``log q(mu) + log q(tau)`` for tensors of one shape -> that shape."""
        mu, tau = _mu_tau(mu, tau)
        return self.q_mu().log_prob(mu) + self.q_tau().log_prob(tau)

    @property
    def e_tau(self) -> float:
        r""":math:`\mathbb E_q[\tau]=a_N/b_N`."""
        return self.a_N / self.b_N

    @property
    def e_log_tau(self) -> float:
        r""":math:`\mathbb E_q[\log\tau]=\psi(a_N)-\log b_N`."""
        return float(torch.special.digamma(torch.tensor(self.a_N, dtype=DTYPE))) - math.log(
            self.b_N
        )

    @property
    def var_mu(self) -> float:
        return 1.0 / self.lambda_N

    @property
    def var_tau(self) -> float:
        return self.a_N / self.b_N**2


def _mu_tau(mu, tau) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor("mu", mu)
    check_tensor("tau", tau)
    if mu.shape != tau.shape:
        raise ValueError(
            f"mu and tau must have the same shape, got {tuple(mu.shape)} and {tuple(tau.shape)}"
        )
    if bool((tau <= 0).any()):
        raise ValueError(f"tau must be > 0 (a precision), got minimum {float(tau.min()):.4g}")
    return mu.to(DTYPE), tau.to(DTYPE)


@dataclass
class CAVIResult:
    """What :meth:`NormalGammaModel.cavi` returns.

    Attributes:
        q: the final factors, a :class:`MeanFieldNormalGamma`.
        elbo: ``(2 * n_iter + 1,)`` float64 tensor: the ELBO at ``init``, then after
            every single factor update (``q(mu)``, ``q(tau)``, ``q(mu)``, ...).
            CAVI guarantees it never decreases.
        trace: the factors after each of those steps (same length as ``elbo``;
            ``trace[0]`` is ``init``).
    """

    q: MeanFieldNormalGamma
    elbo: torch.Tensor
    trace: list[MeanFieldNormalGamma] = field(default_factory=list)


# -- the two coordinate updates -----------------------------------------------------------


def cavi_update_mu(x: torch.Tensor, e_tau, mu0, lambda0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Optimal :math:`q(\mu)=\mathcal N(\mu_N,\lambda_N^{-1})` given :math:`\mathbb E[\tau]` (Bishop 10.26-10.27).

    .. math::
        \mu_N=\frac{\lambda_0\mu_0+N\bar x}{\lambda_0+N},\qquad
        \lambda_N=(\lambda_0+N)\,\mathbb E[\tau]

    Args:
        x: ``(N,)`` observations.
        e_tau: :math:`\mathbb E_{q(\tau)}[\tau]` (> 0).
        mu0: prior mean of ``mu``.
        lambda0: prior precision multiplier (> 0).

    Returns:
        ``(mu_N, lambda_N)``: 0-dim tensors of ``x``'s dtype.
    """
    check_tensor("x", x, ndim=1)
    e_tau = _positive("e_tau", e_tau)
    mu0 = _finite_float("mu0", mu0)
    lambda0 = _positive("lambda0", lambda0)
    n = x.numel()
    mu_N = (lambda0 * mu0 + x.sum()) / (lambda0 + n)
    lambda_N = torch.tensor((lambda0 + n) * e_tau, dtype=x.dtype)
    return mu_N, lambda_N


def cavi_update_tau(
    x: torch.Tensor, mu_N, lambda_N, mu0, lambda0, a0, b0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Optimal :math:`q(\tau)=\mathrm{Gamma}(a_N,b_N)` given :math:`q(\mu)` (Bishop 10.29-10.30).

    .. math::
        a_N=a_0+\frac{N+1}{2},\qquad
        b_N=b_0+\frac12\Big[\sum_n(x_n-\mu_N)^2+\frac{N}{\lambda_N}
        +\lambda_0\Big((\mu_N-\mu_0)^2+\frac1{\lambda_N}\Big)\Big]

    using :math:`\mathbb E_{q(\mu)}(x_n-\mu)^2=(x_n-\mu_N)^2+\lambda_N^{-1}`. The
    ``+1`` in :math:`a_N` comes from the prior :math:`p(\mu\mid\tau)`, which also
    depends on :math:`\tau`.

    Args:
        x: ``(N,)`` observations.
        mu_N, lambda_N: mean and precision (> 0) of the current ``q(mu)``.
        mu0, lambda0, a0, b0: the prior's parameters.

    Returns:
        ``(a_N, b_N)``: 0-dim tensors of ``x``'s dtype.
    """
    check_tensor("x", x, ndim=1)
    mu_N = _finite_float("mu_N", mu_N)
    lambda_N = _positive("lambda_N", lambda_N)
    mu0 = _finite_float("mu0", mu0)
    lambda0 = _positive("lambda0", lambda0)
    a0 = _positive("a0", a0)
    b0 = _positive("b0", b0)
    n = x.numel()
    e_sq_data = (x - mu_N).pow(2).sum() + n / lambda_N
    e_sq_prior = (mu_N - mu0) ** 2 + 1.0 / lambda_N
    a_N = torch.tensor(a0 + 0.5 * (n + 1), dtype=x.dtype)
    b_N = b0 + 0.5 * (e_sq_data + lambda0 * e_sq_prior)
    return a_N, b_N


# -- the model ----------------------------------------------------------------------------


class NormalGammaModel:
    r"""Gaussian data with unknown mean and precision under a Normal-Gamma prior.

    .. math::
        p(x,\mu,\tau)=\prod_{n=1}^N\mathcal N(x_n\mid\mu,\tau^{-1})\;
        \mathcal N\big(\mu\mid\mu_0,(\lambda_0\tau)^{-1}\big)\;\mathrm{Gamma}(\tau\mid a_0,b_0)

    Args:
        mu0: prior mean of ``mu``.
        lambda0: prior precision multiplier of ``mu`` (> 0): ``mu`` has prior
            precision ``lambda0 * tau``.
        a0: prior Gamma shape of ``tau`` (> 0).
        b0: prior Gamma rate of ``tau`` (> 0).
    """

    def __init__(self, mu0: float = 0.0, lambda0: float = 1.0, a0: float = 1.0, b0: float = 1.0):
        self.mu0 = _finite_float("mu0", mu0)
        self.lambda0 = _positive("lambda0", lambda0)
        self.a0 = _positive("a0", a0)
        self.b0 = _positive("b0", b0)

    def __repr__(self) -> str:
        return (f"NormalGammaModel(mu0={self.mu0:g}, lambda0={self.lambda0:g}, "
                f"a0={self.a0:g}, b0={self.b0:g})")

    def prior(self) -> NormalGamma:
        return NormalGamma(self.mu0, self.lambda0, self.a0, self.b0)

    def log_joint(self, x: torch.Tensor, mu: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x,\mu,\tau)` at ``mu``, ``tau`` (> 0) of one shape -> that shape (float64)."""
        x = _check_x(x)
        mu, tau = _mu_tau(mu, tau)
        sd = torch.rsqrt(tau).unsqueeze(-1)
        log_lik = Normal(mu.unsqueeze(-1), sd).log_prob(x).sum(dim=-1)
        return log_lik + self.prior().log_prob(mu, tau)

    def posterior(self, x: torch.Tensor) -> NormalGamma:
        r"""The exact posterior :math:`p(\mu,\tau\mid x)=\mathrm{NG}(m_N,\kappa_N,\alpha_N,\beta_N)`.

        .. math::
            \kappa_N=\lambda_0+N,\quad m_N=\frac{\lambda_0\mu_0+N\bar x}{\kappa_N},\quad
            \alpha_N=a_0+\frac N2,\quad
            \beta_N=b_0+\frac12\sum_n(x_n-\bar x)^2+\frac{\lambda_0N(\bar x-\mu_0)^2}{2\kappa_N}
        """
        x = _check_x(x)
        n = x.numel()
        xbar = float(x.mean())
        kappa = self.lambda0 + n
        m = (self.lambda0 * self.mu0 + n * xbar) / kappa
        alpha = self.a0 + 0.5 * n
        beta = (self.b0 + 0.5 * float((x - xbar).pow(2).sum())
                + 0.5 * self.lambda0 * n * (xbar - self.mu0) ** 2 / kappa)
        return NormalGamma(m, kappa, alpha, beta)

    def log_evidence(self, x: torch.Tensor) -> float:
        r"""Exact :math:`\log p(x)` in nats (a float).

        .. math::
            \log p(x)=\log\Gamma(\alpha_N)-\log\Gamma(a_0)+a_0\log b_0-\alpha_N\log\beta_N
            +\tfrac12\log\frac{\lambda_0}{\kappa_N}-\frac N2\log 2\pi
        """
        x = _check_x(x)
        post = self.posterior(x)
        return (math.lgamma(post.alpha) - math.lgamma(self.a0) + self.a0 * math.log(self.b0)
                - post.alpha * math.log(post.beta) + 0.5 * math.log(self.lambda0 / post.kappa)
                - 0.5 * x.numel() * LOG_2PI)

    def elbo(self, x: torch.Tensor, q: MeanFieldNormalGamma) -> float:
        r"""Closed-form ELBO of a factorized ``q`` (a float, nats).

        With :math:`\mathbb E[\tau]=a_N/b_N`, :math:`\mathbb E[\log\tau]=\psi(a_N)-\log b_N`,
        :math:`S=\sum_n(x_n-\mu_N)^2+N/\lambda_N` and
        :math:`M=(\mu_N-\mu_0)^2+1/\lambda_N`:

        .. math::
            \mathcal L = \Big(\tfrac{N+1}{2}+a_0-1\Big)\mathbb E[\log\tau]
            -\tfrac{N+1}{2}\log 2\pi+\tfrac12\log\lambda_0
            -\mathbb E[\tau]\Big(b_0+\tfrac{S+\lambda_0M}{2}\Big)
            +a_0\log b_0-\log\Gamma(a_0)
            +\underbrace{\tfrac12\log\frac{2\pi e}{\lambda_N}}_{H[q(\mu)]}
            +\underbrace{a_N-\log b_N+\log\Gamma(a_N)+(1-a_N)\psi(a_N)}_{H[q(\tau)]}
        """
        x = _check_x(x)
        if not isinstance(q, MeanFieldNormalGamma):
            raise TypeError(f"q must be a MeanFieldNormalGamma, got {type(q).__name__}")
        n = x.numel()
        e_tau, e_log_tau = q.e_tau, q.e_log_tau
        s = float((x - q.mu_N).pow(2).sum()) + n / q.lambda_N
        m = (q.mu_N - self.mu0) ** 2 + 1.0 / q.lambda_N
        e_log_joint = (
            (0.5 * (n + 1) + self.a0 - 1.0) * e_log_tau
            - 0.5 * (n + 1) * LOG_2PI
            + 0.5 * math.log(self.lambda0)
            - e_tau * (self.b0 + 0.5 * (s + self.lambda0 * m))
            + self.a0 * math.log(self.b0)
            - math.lgamma(self.a0)
        )
        h_mu = 0.5 * (LOG_2PI + 1.0 - math.log(q.lambda_N))
        h_tau = float(gamma_entropy(q.a_N, q.b_N))
        return e_log_joint + h_mu + h_tau

    def default_init(self) -> MeanFieldNormalGamma:
        r"""The prior's moments: :math:`q(\tau)=\mathrm{Gamma}(a_0,b_0)`, :math:`q(\mu)=\mathcal N(\mu_0,(\lambda_0 a_0/b_0)^{-1})`."""
        return MeanFieldNormalGamma(self.mu0, self.lambda0 * self.a0 / self.b0, self.a0, self.b0)

    def cavi(
        self, x: torch.Tensor, n_iter: int = 20, init: MeanFieldNormalGamma | None = None
    ) -> CAVIResult:
        r"""Coordinate ascent on the ELBO: update ``q(mu)``, then ``q(tau)``, ``n_iter`` times.

        Args:
            x: ``(N,)`` observations.
            n_iter: number of sweeps (each sweep is two updates), >= 1.
            init: starting factors (default :meth:`default_init`). Only its
                :math:`\mathbb E[\tau]` influences the first update, but all four
                numbers enter the first ELBO value.

        Returns:
            A :class:`CAVIResult` with the final factors and the ELBO after each update.
        """
        x = _check_x(x)
        n_iter = check_positive_int("n_iter", n_iter)
        if init is None:
            init = self.default_init()
        elif not isinstance(init, MeanFieldNormalGamma):
            raise TypeError(f"init must be a MeanFieldNormalGamma or None, got {type(init).__name__}")
        q = init
        trace = [q]
        elbo = [self.elbo(x, q)]
        for _ in range(n_iter):
            mu_N, lambda_N = cavi_update_mu(x, q.e_tau, self.mu0, self.lambda0)
            q = MeanFieldNormalGamma(float(mu_N), float(lambda_N), q.a_N, q.b_N)
            trace.append(q)
            elbo.append(self.elbo(x, q))
            a_N, b_N = cavi_update_tau(
                x, q.mu_N, q.lambda_N, self.mu0, self.lambda0, self.a0, self.b0
            )
            q = MeanFieldNormalGamma(q.mu_N, q.lambda_N, float(a_N), float(b_N))
            trace.append(q)
            elbo.append(self.elbo(x, q))
        return CAVIResult(q=q, elbo=torch.tensor(elbo, dtype=DTYPE), trace=trace)

    def sample(self, n: int, *, generator: torch.Generator | None = None):
        """Draw ``(mu, tau)`` from the prior and ``n`` observations: returns ``(mu, tau, x)``.

        ``x`` is a float64 ``(n,)`` tensor; ``mu`` and ``tau`` are floats.
        """
        n = check_positive_int("n", n)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        # torch's Gamma sampler takes no generator, so the generator seeds a forked
        # global RNG: draws are reproducible and the caller's global RNG is untouched
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            tau = float(Gamma(torch.tensor(self.a0, dtype=DTYPE),
                              torch.tensor(self.b0, dtype=DTYPE)).sample())
            mu = self.mu0 + torch.randn((), dtype=DTYPE).item() / math.sqrt(self.lambda0 * tau)
            x = mu + torch.randn(n, dtype=DTYPE) / math.sqrt(tau)
        return mu, tau, x
