"""Checks for the exercises of notebook 04 Gradient estimators (``notebooks/04_*.ipynb``)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal
from torch.distributions.transforms import AffineTransform

from ._runner import F64, Case, CheckResult, finish, gen, randn, to_f64

__all__ = ['check_score_function_grad_mu', 'check_reparameterize']

def _score_reference(f, mu, sigma, eps):
    """f(z) * d/dmu log N(z; mu, sigma^2) per sample, the score taken by autograd."""
    z = (mu + sigma * eps).detach()

    def log_q(m):
        return Normal(m, sigma).log_prob(z)

    score = torch.autograd.functional.jacobian(log_q, mu)  # (S,) since mu is 0-dim
    return f(z) * score


def _score_mutants(f, mu, sigma, eps):
    z = mu + sigma * eps
    fz = f(z)
    right = fz * (z - mu) / sigma.pow(2)
    return {
        "div_sigma": fz * (z - mu) / sigma,
        "no_div": fz * (z - mu),
        "sign": -right,
        "mean": right.mean(),
        "sum": right.sum(),
        "no_f": (z - mu) / sigma.pow(2),
        "f_at_eps": f(eps) * (z - mu) / sigma.pow(2),
    }


_SCORE_HINTS = {
    "div_sigma": (
        "you divided by σ where the variance σ² belongs: the score of a Gaussian's mean is "
        "measured in units of its variance."
    ),
    "no_div": "the score ∂/∂μ log N(z; μ, σ²) is scaled by the inverse variance; yours is not.",
    "sign": "wrong sign: the score with respect to μ is positive when z lies above μ.",
    "mean": (
        "return one term per sample (shape (S,)); the notebook averages them itself to study "
        "their variance."
    ),
    "sum": (
        "return one term per sample (shape (S,)); the notebook averages them itself to study "
        "their variance."
    ),
    "no_f": "multiply the score by f(z): each sample's score is weighted by the function value.",
    "f_at_eps": "evaluate f at the samples z = mu + sigma·eps, not at eps.",
}


def check_score_function_grad_mu(score_function_grad_mu) -> CheckResult:
    r"""Check ``score_function_grad_mu(f, mu, sigma, eps) -> (S,)`` (notebook 04).

    One score-function (REINFORCE) term per sample for the gradient of
    :math:`\mathbb E_{\mathcal N(\mu,\sigma^2)} f(z)` with respect to ``mu``, at
    ``z = mu + sigma * eps``. ``mu``, ``sigma`` are 0-dim float32 tensors, ``eps``
    ``(S,)``. Reference: ``f(z)`` times the score of ``Normal(mu, sigma).log_prob``
    differentiated by autograd.
    """
    g = gen(404)

    def one(z):
        return torch.ones_like(z)

    def square(z):
        return z.pow(2)

    def identity(z):
        return z

    def case(label, f, mu, sigma, eps):
        mu32, sigma32 = torch.tensor(float(mu)), torch.tensor(float(sigma))
        eps32 = eps.to(torch.float32)
        dmu, dsigma, deps = to_f64(mu32), to_f64(sigma32), to_f64(eps32)
        return Case(
            label,
            (f, mu32, sigma32, eps32),
            _score_reference(f, dmu, dsigma, deps),
            _score_mutants(f, dmu, dsigma, deps),
        )

    cases = [
        case("f(z) = 1, mu = 0, sigma = 1", one, 0.0, 1.0, randn(g, 5)),
        case("f(z) = z², mu = 0.5, sigma = 1, S = 6", square, 0.5, 1.0, randn(g, 6)),
        case("f(z) = z², mu = -1, sigma = 2 (variance ≠ std)", square, -1.0, 2.0, randn(g, 6)),
        case("f(z) = sin z, sigma = 0.5, a single sample", torch.sin, 0.3, 0.5, randn(g, 1)),
        case("f(z) = z, large mu = 100, sigma = 3", identity, 100.0, 3.0, randn(g, 8)),
    ]
    return finish(
        "score_function_grad_mu",
        score_function_grad_mu,
        cases,
        "tensor",
        _SCORE_HINTS,
        "write the score ∂/∂μ log N(z; μ, σ²) on paper first, then check your function on "
        "one sample by hand (you can compare with torch.autograd on Normal(mu, sigma).log_prob).",
    )


def _reparam_mutants(mu, log_var, eps):
    std = (0.5 * log_var).exp()
    return {
        "exp_var": mu + log_var.exp() * eps,
        "no_exp": mu + log_var * eps,
        "log_std": mu + log_var.exp().pow(2) * eps,
        "minus": mu - std * eps,
        "no_mu": std * eps,
    }


_REPARAM_HINTS = {
    "exp_var": (
        "the exponential of log_var is the variance σ²: scale eps by the standard deviation σ "
        "instead."
    ),
    "no_exp": (
        "the argument log_var is a logarithm: turn it into a standard deviation before scaling eps."
    ),
    "log_std": (
        "the argument log_var is the log of the variance, so the standard deviation is "
        "smaller than what you used."
    ),
    "minus": "add the scaled noise to mu (with a minus sign z would not be the sample for eps).",
    "no_mu": "the sample is centred at mu: you forgot to add mu.",
    "own_noise": (
        "your function draws its own noise (torch.randn_like?): two calls with the same "
        "eps gave different z. Use the eps argument: the whole point of the "
        "reparameterization is that z is a deterministic function of (mu, log_var, eps)."
    ),
    "no_grad": (
        "gradients do not reach mu and log_var: build z from them with tensor operations "
        "(no .detach(), no torch.no_grad(), no torch.tensor(...) around intermediate values)."
    ),
    "grad_wrong": (
        "the value is right but its gradient with respect to mu or log_var is not: compute z "
        "directly from mu, log_var and eps."
    ),
}


def _reparam_grad_post(out, args) -> str | None:
    mu, log_var, eps = args
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return "no_grad"
    try:
        g_mu, g_lv = torch.autograd.grad(
            out.sum(), (mu, log_var), allow_unused=True, retain_graph=False
        )
    except RuntimeError:
        return "no_grad"
    if g_mu is None or g_lv is None:
        return "no_grad"
    want_lv = 0.5 * (0.5 * to_f64(log_var)).exp() * to_f64(eps)
    if not torch.allclose(to_f64(g_mu), torch.ones_like(to_f64(g_mu)), rtol=1e-4, atol=1e-4):
        return "grad_wrong"
    if not torch.allclose(to_f64(g_lv), want_lv, rtol=1e-4, atol=1e-4):
        return "grad_wrong"
    return None


def _reparam_own_noise_probe(fn) -> str | None:
    """Call ``fn`` twice on the same inputs under two RNG seeds: a correct answer is equal."""
    mu, log_var, eps = torch.zeros(6), torch.zeros(6), torch.ones(6)
    outs = []
    for seed in (1, 2):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                outs.append(fn(mu.clone(), log_var.clone(), eps.clone()))
            except Exception:  # errors are reported by the cases themselves
                return None
    a, b = outs
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
        return None if torch.equal(a.detach(), b.detach()) else "own_noise"
    return None


def check_reparameterize(reparameterize) -> CheckResult:
    r"""Check ``reparameterize(mu, log_var, eps) -> z`` (notebook 04).

    ``z`` must be the sample of :math:`\mathcal N(\mu, \mathrm{diag}\,e^{\log\sigma^2})`
    obtained from the standard normal noise ``eps`` (same shape), differentiable
    in ``mu`` and ``log_var``. Reference: ``torch.distributions``'
    ``AffineTransform`` with scale ``sqrt(exp(log_var))``; the gradient case
    compares autograd's gradients with their closed form.
    """
    g = gen(505)

    def case(label, mu, log_var, eps, grad=False):
        a = tuple(t.to(torch.float32) for t in (mu, log_var, eps))
        dmu, dlv, deps = (to_f64(t) for t in a)
        ref = AffineTransform(loc=dmu, scale=dlv.exp().sqrt())(deps)
        if grad:
            a = (a[0].requires_grad_(), a[1].requires_grad_(), a[2])
        return Case(
            label,
            a,
            ref,
            _reparam_mutants(dmu, dlv, deps),
            post=_reparam_grad_post if grad else None,
        )

    cases = [
        case("mu = 0, log_var = 0: z equals eps", torch.zeros(4), torch.zeros(4), randn(g, 4)),
        case(
            "log_var = log 4 (sigma = 2)",
            torch.tensor([1.0, -1.0, 0.5]),
            torch.full((3,), math.log(4.0)),
            randn(g, 3),
        ),
        case(
            "batch of 8 in 2 dims, shape (8, 2)", randn(g, 8, 2), randn(g, 8, 2), randn(g, 8, 2)
        ),
        case(
            "large mu (±1000) and small variance",
            1000.0 * torch.tensor([1.0, -1.0, 0.5]),
            torch.full((3,), -10.0),
            randn(g, 3),
        ),
        case(
            "gradients reach mu and log_var",
            randn(g, 5),
            0.5 * randn(g, 5),
            randn(g, 5),
            grad=True,
        ),
    ]
    return finish(
        "reparameterize",
        reparameterize,
        cases,
        "tensor",
        _REPARAM_HINTS,
        "print mu, log_var, eps and your z for the first failing case, and compute one "
        "entry by hand.",
        probe=_reparam_own_noise_probe,
    )




# -- sticking the landing (build) -------------------------------------------------------


def _stl_parts(log_joint, m, s, eps):
    """grad_z log p at z = m + s eps (autograd, float64) and the noise, for the references."""
    z = (m + s * eps).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_joint(z).sum(), z)
    return grad, eps


def _stl_reference(log_joint, m, s, eps):
    """Closed form of the STL estimate: path = grad log p + eps / s; columns (path, path * eps)."""
    grad, eps = _stl_parts(log_joint, m, s, eps)
    path = grad + eps / s
    return torch.stack([path, path * eps], dim=-1)


def _stl_mutants(log_joint, m, s, eps):
    grad, eps = _stl_parts(log_joint, m, s, eps)
    right = _stl_reference(log_joint, m, s, eps)
    minus = grad - eps / s
    return {
        "total": torch.stack([grad, grad * eps + 1.0 / s], dim=-1),
        "no_log_q": torch.stack([grad, grad * eps], dim=-1),
        "plus_log_q": torch.stack([minus, minus * eps], dim=-1),
        "z_stopped": torch.stack([minus, grad * eps - (eps.pow(2) - 1) / s], dim=-1),
        "swapped": right.flip(-1),
    }


_STL_HINTS = {
    "total": (
        "these are the ordinary reparameterized gradients: log q was differentiated through "
        "its parameters m and s as well. Sticking the landing evaluates log q with m and s "
        "held fixed (detached) and keeps only the path through z."
    ),
    "no_log_q": (
        "your estimate ignores log q altogether: the ELBO integrand is log p(x, z) minus "
        "log q(z), and STL keeps the path of log q through z."
    ),
    "plus_log_q": "the ELBO integrand is log p(x, z) MINUS log q(z); your log q enters with a plus sign.",
    "z_stopped": (
        "you stopped the gradient in the wrong place: keep the path through the sample z and "
        "hold the parameters of log q fixed, not the other way round."
    ),
    "swapped": "the columns are swapped: column 0 is the derivative in m, column 1 in s.",
}


def check_stl_gradient(stl_gradient) -> CheckResult:
    r"""Check ``stl_gradient(log_joint, m, s, eps) -> (S, 2)`` (notebook 04).

    One "sticking the landing" estimate per sample of the ELBO's gradient with
    respect to ``(m, s)`` for :math:`q=\mathcal N(m, s^2)` at ``z = m + s * eps``:
    the gradient of :math:`\log p(x,z)-\log q_{\bar m,\bar s}(z)` with the
    parameters inside :math:`\log q` held fixed. Reference: the closed form
    :math:`(g, g\varepsilon)` with :math:`g=\nabla_z\log p(x,z)+\varepsilon/s`, the
    first term by autograd in float64.
    """
    from ..models import ConjugateGaussianModel

    g = gen(606)
    x_obs = torch.tensor([0.8, 1.9, 1.1, 2.4], dtype=torch.float64)
    conj = ConjugateGaussianModel(mu0=0.0, sigma0=1.5, sigma=0.9)
    post = conj.posterior(x_obs)

    def gaussian(z):
        return conj.log_joint(x_obs, z)

    def logistic(z):
        return -torch.nn.functional.softplus(-3.0 * z) - 0.5 * z.pow(2)

    def case(label, log_joint, m, s, eps):
        m64, s64 = torch.tensor(float(m), dtype=F64), torch.tensor(float(s), dtype=F64)
        eps64 = eps.to(F64)
        return Case(
            label,
            (log_joint, m64, s64, eps64),
            _stl_reference(log_joint, m64, s64, eps64),
            _stl_mutants(log_joint, m64, s64, eps64),
        )

    cases = [
        case("q = the exact posterior: every estimate is 0", gaussian, post.loc, post.scale,
             randn(g, 6)),
        case("same model, q = N(0, 1)", gaussian, 0.0, 1.0, randn(g, 6)),
        case("a logistic likelihood (not Gaussian), m = 0.5, s = 0.7", logistic, 0.5, 0.7,
             randn(g, 5)),
        case("a single sample (S = 1)", logistic, -1.0, 2.0, randn(g, 1)),
        case("large s = 3 (variance ≠ std)", gaussian, 1.0, 3.0, randn(g, 8)),
    ]
    return finish(
        "stl_gradient",
        stl_gradient,
        cases,
        "tensor",
        _STL_HINTS,
        "build z = m + s * eps from copies of m and s that require gradients, evaluate "
        "log p(x, z) - log N(z; m, s²) with m and s detached inside the log-density, and "
        "differentiate the sum over samples; compare with the first case, where every "
        "estimate must vanish.",
    )


# -- where the pathwise estimator loses (experiment) -----------------------------------


def _variances_reference(omega, mu, sigma):
    from ..estimators import variance_cosine

    v_score, v_path = variance_cosine(
        *(torch.tensor(float(v), dtype=F64) for v in (mu, sigma, omega))
    )
    return torch.stack([v_score, v_path])


_VARIANCE_HINTS = {
    "swapped": "the two entries are swapped: entry 0 is the score function, entry 1 pathwise.",
    "std": "return variances (squared spread), not standard deviations.",
    "of_mean": (
        "you returned the variance of the S-sample average; return the variance of ONE "
        "estimate, the spread of the S single-sample estimates themselves."
    ),
}


def check_estimator_variances(estimator_variances) -> CheckResult:
    r"""Check ``estimator_variances(f, mu, sigma, n_samples, seed) -> (2,)`` (notebook 04).

    The variance of one score-function and of one pathwise estimate of
    :math:`\partial_\mu\mathbb E_{\mathcal N(\mu,\sigma^2)}f`, estimated from
    ``n_samples`` single-sample estimates, for :math:`f(z)=\cos(\omega z)`.
    Reference: the closed forms of :func:`vi_helpers.estimators.variance_cosine`,
    with a 5% tolerance for Monte Carlo error at ``n_samples = 200_000``.
    """

    def case(label, omega, mu, sigma):
        def f(z, omega=omega):
            return torch.cos(omega * z)

        ref = _variances_reference(omega, mu, sigma)
        mutants = {"swapped": ref.flip(0), "std": ref.sqrt(), "of_mean": ref / 200_000}
        args = (f, torch.tensor(float(mu), dtype=F64), torch.tensor(float(sigma), dtype=F64),
                200_000, 0)
        return Case(label, args, ref, mutants, rtol=0.05, atol=1e-9)

    cases = [
        case("cos(0.5 z), mu = 0.3, sigma = 1: slow oscillation", 0.5, 0.3, 1.0),
        case("cos(2 z), mu = 0.3, sigma = 1", 2.0, 0.3, 1.0),
        case("cos(8 z), mu = 0.3, sigma = 1: fast oscillation", 8.0, 0.3, 1.0),
        case("cos(8 z), mu = -1, sigma = 0.1: omega sigma < 1 again", 8.0, -1.0, 0.1),
    ]
    return finish(
        "estimator_variances",
        estimator_variances,
        cases,
        "tensor",
        _VARIANCE_HINTS,
        "draw n_samples single-sample estimates of d/dmu from each estimator (seeded), "
        "take the variance of each set, and return the two numbers in a tensor (score "
        "function first).",
    )


__all__ += ["check_stl_gradient", "check_estimator_variances"]
