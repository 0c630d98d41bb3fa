r"""Mean-field variational inference by coordinate ascent (CAVI), with an exact reference.

The model is the univariate Gaussian with unknown mean :math:`\mu` and precision
:math:`\tau` under its conjugate Normal-Gamma prior (Bishop 2006, section 10.1.3):

.. math::
    \tau\sim\mathrm{Gamma}(a_0, b_0),\qquad
    \mu\mid\tau\sim\mathcal N\big(\mu_0, (\kappa_0\tau)^{-1}\big),\qquad
    x_n\mid\mu,\tau\sim\mathcal N(\mu, \tau^{-1}),\ n=1..N.

``Gamma(a, b)`` has shape ``a`` and **rate** ``b`` (mean ``a/b``), as in Bishop
and ``torch.distributions.Gamma``.

Because the prior is conjugate, the posterior is again Normal-Gamma and the
evidence :math:`p(x)` has a closed form: this is the ground truth against which
the mean-field approximation :math:`q(\mu,\tau)=q(\mu)\,q(\tau)` is judged.

CAVI alternates the two optimal-factor updates (Bishop eqs. 10.26-10.30)

.. math::
    q(\mu)=\mathcal N(m,s^2),\quad
    m=\frac{\kappa_0\mu_0+N\bar x}{\kappa_0+N},\quad
    \frac1{s^2}=(\kappa_0+N)\,\mathbb E[\tau]

.. math::
    q(\tau)=\mathrm{Gamma}(a,b),\quad a=a_0+\frac{N+1}{2},\quad
    b=b_0+\tfrac12\,\mathbb E_{q(\mu)}\Big[\sum_n(x_n-\mu)^2+\kappa_0(\mu-\mu_0)^2\Big]

and each update cannot decrease the ELBO, which :meth:`NormalGammaModel.elbo`
computes in closed form.

All computations are done in float64 (the notebook checks identities to 1e-12);
the parameters of the returned distributions are Python floats.

Notation (``docs/glossary.md``): subscript 0 for the prior, subscript N for the
*exact* posterior :math:`\mathrm{NG}(\mu_N,\kappa_N,a_N,b_N)` (Murphy 2007), no
subscript for the mean-field factors :math:`q(\mu)=\mathcal N(m,s^2)`,
:math:`q(\tau)=\mathrm{Gamma}(a,b)` (Bishop 2006 writes them
:math:`\mathcal N(\mu_N,\lambda_N^{-1})`, :math:`\mathrm{Gamma}(a_N,b_N)`).

References:
    Bishop (2006), Pattern Recognition and Machine Learning, section 10.1.3.
    Murphy (2007), Conjugate Bayesian analysis of the Gaussian distribution.
    Blei, Kucukelbir & McAuliffe (2017), Variational Inference: A Review for Statisticians.

CAVI for a mixture of Gaussians (local optima, label switching) is in
:mod:`vi_helpers.cavi_mixture`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.distributions import Gamma, Normal, StudentT

from ._validate import (
    LOG_2PI,
    check_finite_scalar,
    check_positive_float,
    check_positive_int,
    check_positive_scalar,
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
    r"""The Normal-Gamma distribution :math:`\mathrm{NG}(\mu,\tau\mid \mu_\star,\kappa,a,b)` (location :math:`\mu_\star`).

    .. math::
        \tau\sim\mathrm{Gamma}(a,b),\qquad \mu\mid\tau\sim\mathcal N\big(\mu_\star,(\kappa\tau)^{-1}\big)

    ``mu`` and ``tau`` are *dependent*: the spread of ``mu`` shrinks as ``tau``
    grows, which a factorized ``q(mu) q(tau)`` cannot represent. Its marginals:
    :math:`\tau\sim\mathrm{Gamma}(a,b)` and
    :math:`\mu\sim\mathrm{St}\big(\mu_\star,\ b/(a\kappa),\ 2a\big)` (Student-t
    with :math:`2a` degrees of freedom and squared scale :math:`b/(a\kappa)`),
    so :math:`\mathrm{Var}[\mu]=b/(\kappa(a-1))` for :math:`a>1`.

    Attributes:
        loc: location :math:`\mu_\star` of ``mu`` (its mean).
        kappa: precision multiplier of ``mu`` given ``tau`` (> 0).
        a: Gamma shape of ``tau`` (> 0).
        b: Gamma rate of ``tau`` (> 0).
    """

    loc: float
    kappa: float
    a: float
    b: float

    def __post_init__(self):
        check_finite_scalar("loc", self.loc)
        for name in ("kappa", "a", "b"):
            check_positive_float(name, getattr(self, name))

    def log_prob(self, mu: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Joint log-density at ``mu`` and ``tau`` (> 0), tensors of one shape -> that shape."""
        mu, tau = _mu_tau(mu, tau)
        log_p_tau = Gamma(torch.tensor(self.a, dtype=DTYPE),
                          torch.tensor(self.b, dtype=DTYPE)).log_prob(tau)
        log_p_mu = (0.5 * (math.log(self.kappa) + torch.log(tau) - LOG_2PI)
                    - 0.5 * self.kappa * tau * (mu - self.loc) ** 2)
        return log_p_tau + log_p_mu

    def marginal_tau(self) -> Gamma:
        r""":math:`p(\tau)=\mathrm{Gamma}(a,b)`."""
        return Gamma(torch.tensor(self.a, dtype=DTYPE), torch.tensor(self.b, dtype=DTYPE))

    def marginal_mu(self) -> StudentT:
        r""":math:`p(\mu)=\mathrm{St}(\mu_\star,b/(a\kappa),2a)`, as a ``StudentT``."""
        scale = math.sqrt(self.b / (self.a * self.kappa))
        return StudentT(torch.tensor(2.0 * self.a, dtype=DTYPE),
                        torch.tensor(self.loc, dtype=DTYPE), torch.tensor(scale, dtype=DTYPE))

    @property
    def mean_mu(self) -> float:
        return self.loc

    @property
    def var_mu(self) -> float:
        r""":math:`b/(\kappa(a-1))`; ``inf`` when :math:`a\le 1`."""
        return self.b / (self.kappa * (self.a - 1.0)) if self.a > 1 else math.inf

    @property
    def mean_tau(self) -> float:
        return self.a / self.b

    @property
    def var_tau(self) -> float:
        return self.a / self.b**2


@dataclass(frozen=True)
class MeanFieldNormalGamma:
    r"""A factorized :math:`q(\mu,\tau)=\mathcal N(\mu\mid m,s^2)\,\mathrm{Gamma}(\tau\mid a,b)`.

    Attributes:
        m: mean of ``q(mu)``.
        s: standard deviation of ``q(mu)`` (> 0).
        a: shape of ``q(tau)`` (> 0).
        b: rate of ``q(tau)`` (> 0).
    """

    m: float
    s: float
    a: float
    b: float

    def __post_init__(self):
        check_finite_scalar("m", self.m)
        for name in ("s", "a", "b"):
            check_positive_float(name, getattr(self, name))

    def q_mu(self) -> Normal:
        return Normal(torch.tensor(self.m, dtype=DTYPE),
                      torch.tensor(self.s, dtype=DTYPE))

    def q_tau(self) -> Gamma:
        return Gamma(torch.tensor(self.a, dtype=DTYPE), torch.tensor(self.b, dtype=DTYPE))

    def log_prob(self, mu: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``log q(mu) + log q(tau)`` for tensors of one shape -> that shape."""
        mu, tau = _mu_tau(mu, tau)
        return self.q_mu().log_prob(mu) + self.q_tau().log_prob(tau)

    @property
    def e_tau(self) -> float:
        r""":math:`\mathbb E_q[\tau]=a/b`."""
        return self.a / self.b

    @property
    def e_log_tau(self) -> float:
        r""":math:`\mathbb E_q[\log\tau]=\psi(a)-\log b`."""
        return float(torch.special.digamma(torch.tensor(self.a, dtype=DTYPE))) - math.log(
            self.b
        )

    @property
    def var_mu(self) -> float:
        return self.s**2

    @property
    def var_tau(self) -> float:
        return self.a / self.b**2


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


def cavi_update_mu(x: torch.Tensor, e_tau, mu0, kappa0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Optimal :math:`q(\mu)=\mathcal N(m,s^2)` given :math:`\mathbb E[\tau]` (Bishop 10.26-10.27).

    .. math::
        m=\frac{\kappa_0\mu_0+N\bar x}{\kappa_0+N},\qquad
        \frac1{s^2}=(\kappa_0+N)\,\mathbb E[\tau]

    Args:
        x: ``(N,)`` observations.
        e_tau: :math:`\mathbb E_{q(\tau)}[\tau]` (> 0).
        mu0: prior mean of ``mu``.
        kappa0: prior precision multiplier (> 0).

    Returns:
        ``(m, s)``: 0-dim tensors of ``x``'s dtype (mean and standard deviation).
    """
    check_tensor("x", x, ndim=1)
    e_tau = check_positive_scalar("e_tau", e_tau)
    mu0 = check_finite_scalar("mu0", mu0)
    kappa0 = check_positive_scalar("kappa0", kappa0)
    n = x.numel()
    m = (kappa0 * mu0 + x.sum()) / (kappa0 + n)
    # precisions add: the prior's kappa0 * tau and N observations' tau each, averaged over q(tau)
    s = torch.tensor(((kappa0 + n) * e_tau) ** -0.5, dtype=x.dtype)
    return m, s


def cavi_update_tau(
    x: torch.Tensor, m, s, mu0, kappa0, a0, b0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Optimal :math:`q(\tau)=\mathrm{Gamma}(a,b)` given :math:`q(\mu)` (Bishop 10.29-10.30).

    .. math::
        a=a_0+\frac{N+1}{2},\qquad
        b=b_0+\frac12\Big[\sum_n(x_n-m)^2+N s^2
        +\kappa_0\Big((m-\mu_0)^2+s^2\Big)\Big]

    using :math:`\mathbb E_{q(\mu)}(x_n-\mu)^2=(x_n-m)^2+s^2`. The
    ``+1`` in :math:`a` comes from the prior :math:`p(\mu\mid\tau)`, which also
    depends on :math:`\tau`.

    Args:
        x: ``(N,)`` observations.
        m, s: mean and standard deviation (> 0) of the current ``q(mu)``.
        mu0, kappa0, a0, b0: the prior's parameters.

    Returns:
        ``(a, b)``: 0-dim tensors of ``x``'s dtype.
    """
    check_tensor("x", x, ndim=1)
    m = check_finite_scalar("m", m)
    s = check_positive_scalar("s", s)
    mu0 = check_finite_scalar("mu0", mu0)
    kappa0 = check_positive_scalar("kappa0", kappa0)
    a0 = check_positive_scalar("a0", a0)
    b0 = check_positive_scalar("b0", b0)
    n = x.numel()
    e_sq_data = (x - m).pow(2).sum() + n * s**2
    e_sq_prior = (m - mu0) ** 2 + s**2
    a = torch.tensor(a0 + 0.5 * (n + 1), dtype=x.dtype)
    b = b0 + 0.5 * (e_sq_data + kappa0 * e_sq_prior)
    return a, b


# -- the model ----------------------------------------------------------------------------


class NormalGammaModel:
    r"""Gaussian data with unknown mean and precision under a Normal-Gamma prior.

    .. math::
        p(x,\mu,\tau)=\prod_{n=1}^N\mathcal N(x_n\mid\mu,\tau^{-1})\;
        \mathcal N\big(\mu\mid\mu_0,(\kappa_0\tau)^{-1}\big)\;\mathrm{Gamma}(\tau\mid a_0,b_0)

    Args:
        mu0: prior mean of ``mu``.
        kappa0: prior precision multiplier of ``mu`` (> 0): ``mu`` has prior
            precision ``kappa0 * tau``.
        a0: prior Gamma shape of ``tau`` (> 0).
        b0: prior Gamma rate of ``tau`` (> 0).
    """

    def __init__(self, mu0: float = 0.0, kappa0: float = 1.0, a0: float = 1.0, b0: float = 1.0):
        self.mu0 = check_finite_scalar("mu0", mu0)
        self.kappa0 = check_positive_scalar("kappa0", kappa0)
        self.a0 = check_positive_scalar("a0", a0)
        self.b0 = check_positive_scalar("b0", b0)

    def __repr__(self) -> str:
        return (f"NormalGammaModel(mu0={self.mu0:g}, kappa0={self.kappa0:g}, "
                f"a0={self.a0:g}, b0={self.b0:g})")

    def prior(self) -> NormalGamma:
        return NormalGamma(self.mu0, self.kappa0, self.a0, self.b0)

    def log_joint(self, x: torch.Tensor, mu: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x,\mu,\tau)` at ``mu``, ``tau`` (> 0) of one shape -> that shape (float64)."""
        x = _check_x(x)
        mu, tau = _mu_tau(mu, tau)
        sd = torch.rsqrt(tau).unsqueeze(-1)
        log_lik = Normal(mu.unsqueeze(-1), sd).log_prob(x).sum(dim=-1)
        return log_lik + self.prior().log_prob(mu, tau)

    def posterior(self, x: torch.Tensor) -> NormalGamma:
        r"""The exact posterior :math:`p(\mu,\tau\mid x)=\mathrm{NG}(\mu_N,\kappa_N,a_N,b_N)`.

        .. math::
            \kappa_N=\kappa_0+N,\quad \mu_N=\frac{\kappa_0\mu_0+N\bar x}{\kappa_N},\quad
            a_N=a_0+\frac N2,\quad
            b_N=b_0+\frac12\sum_n(x_n-\bar x)^2+\frac{\kappa_0N(\bar x-\mu_0)^2}{2\kappa_N}

        Returned as a :class:`NormalGamma` with ``loc`` :math:`=\mu_N`, ``kappa``,
        ``a``, ``b`` :math:`=\kappa_N,a_N,b_N`.
        """
        x = _check_x(x)
        n = x.numel()
        xbar = float(x.mean())
        kappa_N = self.kappa0 + n
        mu_N = (self.kappa0 * self.mu0 + n * xbar) / kappa_N
        a_N = self.a0 + 0.5 * n
        b_N = (self.b0 + 0.5 * float((x - xbar).pow(2).sum())
               + 0.5 * self.kappa0 * n * (xbar - self.mu0) ** 2 / kappa_N)
        return NormalGamma(mu_N, kappa_N, a_N, b_N)

    def log_evidence(self, x: torch.Tensor) -> float:
        r"""Exact :math:`\log p(x)` in nats (a float).

        .. math::
            \log p(x)=\log\Gamma(a_N)-\log\Gamma(a_0)+a_0\log b_0-a_N\log b_N
            +\tfrac12\log\frac{\kappa_0}{\kappa_N}-\frac N2\log 2\pi
        """
        x = _check_x(x)
        post = self.posterior(x)
        return (math.lgamma(post.a) - math.lgamma(self.a0) + self.a0 * math.log(self.b0)
                - post.a * math.log(post.b) + 0.5 * math.log(self.kappa0 / post.kappa)
                - 0.5 * x.numel() * LOG_2PI)

    def elbo(self, x: torch.Tensor, q: MeanFieldNormalGamma) -> float:
        r"""Closed-form ELBO of a factorized ``q`` (a float, nats).

        With :math:`\mathbb E[\tau]=a/b`, :math:`\mathbb E[\log\tau]=\psi(a)-\log b`,
        :math:`S=\sum_n(x_n-m)^2+Ns^2` and
        :math:`M=(m-\mu_0)^2+s^2`:

        .. math::
            \mathcal L = \Big(\tfrac{N+1}{2}+a_0-1\Big)\mathbb E[\log\tau]
            -\tfrac{N+1}{2}\log 2\pi+\tfrac12\log\kappa_0
            -\mathbb E[\tau]\Big(b_0+\tfrac{S+\kappa_0M}{2}\Big)
            +a_0\log b_0-\log\Gamma(a_0)
            +\underbrace{\tfrac12\log(2\pi e s^2)}_{H[q(\mu)]}
            +\underbrace{a-\log b+\log\Gamma(a)+(1-a)\psi(a)}_{H[q(\tau)]}
        """
        x = _check_x(x)
        if not isinstance(q, MeanFieldNormalGamma):
            raise TypeError(f"q must be a MeanFieldNormalGamma, got {type(q).__name__}")
        n = x.numel()
        e_tau, e_log_tau = q.e_tau, q.e_log_tau
        e_sq_data = float((x - q.m).pow(2).sum()) + n * q.s**2
        e_sq_prior = (q.m - self.mu0) ** 2 + q.s**2
        e_log_joint = (
            (0.5 * (n + 1) + self.a0 - 1.0) * e_log_tau
            - 0.5 * (n + 1) * LOG_2PI
            + 0.5 * math.log(self.kappa0)
            - e_tau * (self.b0 + 0.5 * (e_sq_data + self.kappa0 * e_sq_prior))
            + self.a0 * math.log(self.b0)
            - math.lgamma(self.a0)
        )
        h_mu = 0.5 * (LOG_2PI + 1.0) + math.log(q.s)
        h_tau = float(gamma_entropy(q.a, q.b))
        return e_log_joint + h_mu + h_tau

    def default_init(self) -> MeanFieldNormalGamma:
        r"""The prior's moments: :math:`q(\tau)=\mathrm{Gamma}(a_0,b_0)`, :math:`q(\mu)=\mathcal N(\mu_0,s^2)` with :math:`1/s^2=\kappa_0 a_0/b_0`."""
        return MeanFieldNormalGamma(
            self.mu0, (self.kappa0 * self.a0 / self.b0) ** -0.5, self.a0, self.b0
        )

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
            m, s = cavi_update_mu(x, q.e_tau, self.mu0, self.kappa0)
            q = MeanFieldNormalGamma(float(m), float(s), q.a, q.b)
            trace.append(q)
            elbo.append(self.elbo(x, q))
            a, b = cavi_update_tau(
                x, q.m, q.s, self.mu0, self.kappa0, self.a0, self.b0
            )
            q = MeanFieldNormalGamma(q.m, q.s, float(a), float(b))
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
            mu = self.mu0 + torch.randn((), dtype=DTYPE).item() / math.sqrt(self.kappa0 * tau)
            x = mu + torch.randn(n, dtype=DTYPE) / math.sqrt(tau)
        return mu, tau, x
