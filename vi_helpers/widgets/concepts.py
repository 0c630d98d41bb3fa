r"""Concept widgets for the early notebooks: both KLs, the ELBO gap, and estimator variance.

* :class:`KLExplorer` -- :math:`\mathrm{KL}(q\,\|\,p)` vs :math:`\mathrm{KL}(p\,\|\,q)` for a
  Gaussian ``q`` and a bimodal mixture ``p`` (notebook 1).
* :class:`ELBOGapExplorer` -- :math:`\log p(x)=\mathrm{ELBO}(q)+\mathrm{KL}(q\,\|\,p(z\mid x))`
  in a conjugate Gaussian model (notebook 2).
* :class:`EstimatorVarianceExplorer` -- score-function vs pathwise gradients of
  :math:`\mathbb E_{\mathcal N(\mu,\sigma^2)}(z-k)^2` (notebook 4).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import torch

from .._validate import (
    check_in_interval,
    check_nonnegative_int,
    check_positive_int,
    check_range,
    check_tensor,
)
from ..estimators import (
    pathwise_gradient,
    score_function_gradient,
    true_gradient_quadratic,
    variance_pathwise_quadratic,
    variance_score_function_quadratic,
)
from ..kl import kl_normal_mixture, kl_univariate_normal, normal_mixture
from ..models import ConjugateGaussianModel
from ._aggplot import AggPlot, ConceptExplorer, needs_limit, new_figure, normal_pdf
from ._base import html, info_widget, slider


class KLExplorer(ConceptExplorer):
    r"""Fit a Gaussian ``q`` to a bimodal mixture ``p`` by hand and read both KLs.

    Sliders set the mean and standard deviation of :math:`q=\mathcal N(\mu,\sigma^2)`;
    the text shows :math:`\mathrm{KL}(q\,\|\,p)` (the *reverse* KL that VI minimizes:
    mode-seeking, small when ``q`` sits inside one mode) and
    :math:`\mathrm{KL}(p\,\|\,q)` (the *forward* KL: mass-covering, small when ``q``
    spreads over both), computed by :func:`~vi_helpers.kl.kl_normal_mixture`. The
    plot shows both densities.

    Args:
        weights, means, stds: the mixture ``p``; a single component makes ``p``
            Gaussian (the KLs then have closed forms to compare with).
        mu, sigma: starting ``q``.
        mu_range, sigma_range: slider ranges (``sigma_range[0] > 0``).
        n_grid: integration grid points.

    Attributes:
        mu_slider, sigma_slider, plot (``Image``), info (``HTML``),
        kl_qp, kl_pq (current values, floats).
    """

    def __init__(
        self,
        *,
        weights=(0.5, 0.5),
        means=(-2.0, 2.0),
        stds=(0.6, 0.6),
        mu: float = 0.0,
        sigma: float = 1.0,
        mu_range: tuple[float, float] = (-5.0, 5.0),
        sigma_range: tuple[float, float] = (0.1, 4.0),
        n_grid: int = 4001,
    ):
        self._p = normal_mixture(weights, means, stds)
        mu_lo, mu_hi = check_range("mu_range", mu_range)
        sig_lo, sig_hi = check_range("sigma_range", sigma_range, positive=True)
        mu = check_in_interval("mu", mu, mu_lo, mu_hi)
        sigma = check_in_interval("sigma", sigma, sig_lo, sig_hi)
        self.n_grid = check_positive_int("n_grid", n_grid)
        if self.n_grid < 101:
            raise ValueError(f"n_grid must be >= 101, got {n_grid}")
        self._w = self._p.mixture_distribution.probs
        self._m = self._p.component_distribution.loc
        self._s = self._p.component_distribution.scale

        self.mu_slider = slider("m (q mean)", mu, mu_lo, mu_hi, (mu_hi - mu_lo) / 200)
        self.sigma_slider = slider("s (q std)", sigma, sig_lo, sig_hi, (sig_hi - sig_lo) / 200)
        z_lo = min(mu_lo, float((self._m - 4 * self._s).min()))
        z_hi = max(mu_hi, float((self._m + 4 * self._s).max()))
        self._z = np.linspace(z_lo, z_hi, 400)
        p = self._p.log_prob(torch.from_numpy(self._z)).exp().numpy()
        self._p_max = float(p.max())
        fig = new_figure(400, 220)
        ax = fig.add_axes((0.1, 0.18, 0.86, 0.72))
        ax.fill_between(self._z, p, color="tab:blue", alpha=0.25)
        ax.plot(self._z, p, color="tab:blue", label="p (mixture)")
        (self._q_line,) = ax.plot(self._z, p, color="tab:orange", lw=2, label="q")
        ax.set(xlim=(z_lo, z_hi), xlabel="z", title="densities")
        ax.legend(loc="upper right", fontsize="small")
        ax.set_ylim(0.0, 1.15 * self._p_max)
        self._plot = AggPlot(fig, [self._q_line])
        self.info = info_widget(420, lines=2)
        self.kl_qp = self.kl_pq = float("nan")
        self._build_panel([self.mu_slider, self.sigma_slider], "vi-kl-plot", "vi-kl-explorer", 440)

    def _update(self) -> None:
        mu, sigma = float(self.mu_slider.value), float(self.sigma_slider.value)
        self.kl_qp, self.kl_pq = kl_normal_mixture(
            mu, sigma, self._w, self._m, self._s, n_grid=self.n_grid
        )
        q = normal_pdf(self._z, mu, sigma)
        self._plot.set_curve(self._q_line, q, at_least=self._p_max, headroom=1.15)
        self.info.value = html(
            f"KL(q‖p) = {self.kl_qp:8.4f} nats   (reverse, mode-seeking)\n"
            f"KL(p‖q) = {self.kl_pq:8.4f} nats   (forward, mass-covering)"
        )

    def _repr_args(self) -> str:
        return f"components={self._w.numel()}"


class ELBOGapExplorer(ConceptExplorer):
    r"""The evidence split into the ELBO and the gap, for a model with exact answers.

    For :class:`~vi_helpers.models.ConjugateGaussianModel` and
    :math:`q(z)=\mathcal N(m, s^2)` every term has a closed form (computed in
    float64):

    .. math::
        \log p(x) = \mathrm{ELBO}(q) + \mathrm{KL}\big(q\,\|\,p(z\mid x)\big).

    Sliders set ``m`` and ``s``. The left panel shows ``q`` against the exact
    posterior; the right panel a stacked bar, ELBO (blue) plus KL (orange), that
    always reaches the dashed line at :math:`\log p(x)`: moving ``q`` only trades
    one for the other. The gap closes exactly when ``q`` is the posterior.

    Args:
        model: a ``ConjugateGaussianModel``.
        x: ``(n,)`` observations.
        mu, sigma: starting ``q`` (default: the prior :math:`\mathcal N(\mu_0,\sigma_0^2)`,
            clipped to the slider ranges).
        mu_range, sigma_range: slider ranges (defaults cover prior and posterior).

    Attributes:
        mu_slider, sigma_slider, plot, info, elbo, kl, log_evidence (floats),
        posterior (``(mean, std)`` floats).
    """

    def __init__(
        self,
        model,
        x: torch.Tensor,
        *,
        mu: float | None = None,
        sigma: float | None = None,
        mu_range: tuple[float, float] | None = None,
        sigma_range: tuple[float, float] | None = None,
    ):
        if not isinstance(model, ConjugateGaussianModel):
            raise TypeError(f"model must be a ConjugateGaussianModel, got {type(model).__name__}")
        check_tensor("x", x, ndim=1)
        self.model = model
        self.x = x.detach().to(torch.float64)
        post = model.posterior(self.x)
        self.posterior = (float(post.loc), float(post.scale))
        self.log_evidence = float(model.log_evidence(self.x))
        m_n, s_n = self.posterior
        spread = max(model.sigma0, s_n)
        if mu_range is None:
            mu_range = (min(model.mu0, m_n) - 3 * spread, max(model.mu0, m_n) + 3 * spread)
        if sigma_range is None:
            sigma_range = (s_n / 5, 2.0 * max(model.sigma0, s_n))
        mu_lo, mu_hi = check_range("mu_range", mu_range)
        sig_lo, sig_hi = check_range("sigma_range", sigma_range, positive=True)
        mu = min(max(model.mu0, mu_lo), mu_hi) if mu is None else check_in_interval("mu", mu, mu_lo, mu_hi)
        sigma = (
            min(max(model.sigma0, sig_lo), sig_hi)
            if sigma is None
            else check_in_interval("sigma", sigma, sig_lo, sig_hi)
        )
        self.mu_slider = slider("m (q mean)", mu, mu_lo, mu_hi, (mu_hi - mu_lo) / 200)
        self.sigma_slider = slider("s (q std)", sigma, sig_lo, sig_hi, (sig_hi - sig_lo) / 200)
        self.mu_slider.style.description_width = "90px"
        self.sigma_slider.style.description_width = "90px"
        self._plot = self._gap_plot(mu_lo - 0.5 * sig_hi, mu_hi + 0.5 * sig_hi)
        self.info = info_widget(500, lines=2)
        self.elbo = self.kl = float("nan")
        sliders = [self.mu_slider, self.sigma_slider]
        self._build_panel(sliders, "vi-elbo-plot", "vi-elbo-gap-explorer", 520)

    def _gap_plot(self, z_lo: float, z_hi: float) -> AggPlot:
        """Left: ``q`` against the exact posterior; right: the stacked ELBO + KL bar."""
        fig = new_figure(480, 230)
        ax_d = fig.add_axes((0.08, 0.18, 0.5, 0.7))
        self._zgrid = np.linspace(z_lo, z_hi, 400)
        post_pdf = normal_pdf(self._zgrid, *self.posterior)
        self._post_max = float(post_pdf.max())
        ax_d.plot(self._zgrid, post_pdf, "k--", label="p(z|x)")
        (self._q_line,) = ax_d.plot(self._zgrid, post_pdf, color="tab:orange", lw=2, label="q(z)")
        ax_d.set(xlim=(z_lo, z_hi), xlabel="z", title="q vs exact posterior")
        ax_d.set_ylim(0.0, 1.2 * self._post_max)
        ax_d.legend(loc="upper right", fontsize="small")
        ax_b = fig.add_axes((0.69, 0.18, 0.14, 0.7))
        ax_b.axhline(self.log_evidence, color="k", ls="--", lw=1)
        self._elbo_bar = ax_b.bar([0], [1.0], width=0.6, color="tab:blue", label="ELBO")[0]
        self._kl_bar = ax_b.bar([0], [1.0], width=0.6, color="tab:orange", label="KL")[0]
        ax_b.set_xlim(-0.6, 0.6)
        ax_b.set_xticks([0], ["log p(x)"])
        ax_b.set_title("ELBO + KL", fontsize=10)
        ax_b.legend(loc="lower left", bbox_to_anchor=(1.02, 0.0), fontsize="small", frameon=False)
        self._ax_b = ax_b
        return AggPlot(fig, [self._q_line, self._elbo_bar, self._kl_bar])

    def _update(self) -> None:
        m, s = float(self.mu_slider.value), float(self.sigma_slider.value)
        m_t = torch.tensor(m, dtype=torch.float64)
        s_t = torch.tensor(s, dtype=torch.float64)
        self.elbo = float(self.model.elbo(self.x, m_t, s_t))
        self.kl = float(
            kl_univariate_normal(
                m_t, s_t, *(torch.tensor(v, dtype=torch.float64) for v in self.posterior)
            )
        )
        q = normal_pdf(self._zgrid, m, s)
        self._plot.set_curve(self._q_line, q, at_least=self._post_max, headroom=1.2)
        self._update_bars()
        self.info.value = html(
            f"log p(x) = {self.log_evidence:.4f}\n"
            f"         = ELBO {self.elbo:.4f} + KL(q‖p(z|x)) {self.kl:.4f}"
        )

    def _update_bars(self) -> None:
        # bars stand on the bottom of the axes; rescale when the ELBO leaves the view
        # or the gap shrinks to a sliver of it
        # (at least 1 nat of room: near the optimum the gap -> 0, and a view scaled to
        # the gap would be redrawn on every move)
        low, high = min(self.elbo, self.log_evidence - 1.0), self.log_evidence
        if needs_limit(self._ax_b.get_ylim(), low, high, slack=4.0) is not None:
            span = max(high - low, 0.5)
            self._ax_b.set_ylim(low - 0.3 * span, high + 0.15 * span)
            self._plot.invalidate()
        bottom = self._ax_b.get_ylim()[0]
        self._elbo_bar.set_y(bottom)
        self._elbo_bar.set_height(self.elbo - bottom)
        self._kl_bar.set_y(self.elbo)
        self._kl_bar.set_height(self.kl)

    def _repr_args(self) -> str:
        return f"n={self.x.numel()}"


class EstimatorVarianceExplorer(ConceptExplorer):
    r"""Score-function vs pathwise gradient estimates for :math:`f(z)=(z-k)^2`.

    With :math:`z=\mu+\sigma\varepsilon`, ``n`` seeded draws give ``n``
    single-sample estimates of :math:`\partial_\mu\mathbb E f=2(\mu-k)` from each
    estimator (:func:`~vi_helpers.estimators.score_function_gradient`,
    :func:`~vi_helpers.estimators.pathwise_gradient`, the same noise for both).
    The plot overlays their histograms (densities, 40 bins over the true
    gradient :math:`\pm 4` score-function standard deviations; values outside are
    counted in the end bins). The table shows the Monte Carlo mean with its
    standard error and the sample variance of the estimates for :math:`\mu` and
    :math:`\sigma`, next to the closed-form variances
    (:func:`~vi_helpers.estimators.variance_score_function_quadratic`,
    :func:`~vi_helpers.estimators.variance_pathwise_quadratic`).

    Args:
        k: the target in ``f``.
        mu: the mean of ``q`` (fixed).
        sigma: starting standard deviation.
        n_samples: starting number of draws.
        seed: seed of the draws.
        sigma_range, n_range: slider ranges.

    Attributes:
        n_slider, sigma_slider, plot, info, grad_score and grad_pathwise (dicts
        ``"mu"``/``"sigma"`` -> ``(n,)`` tensors), closed_form (dict of variances),
        true_gradient (dict ``"mu"``/``"sigma"`` -> float).
    """

    def __init__(
        self,
        *,
        k: float = 0.0,
        mu: float = 1.0,
        sigma: float = 1.0,
        n_samples: int = 200,
        seed: int = 0,
        sigma_range: tuple[float, float] = (0.1, 3.0),
        n_range: tuple[int, int] = (10, 5000),
    ):
        for name, value in (("k", k), ("mu", mu)):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        sig_lo, sig_hi = check_range("sigma_range", sigma_range, positive=True)
        sigma = check_in_interval("sigma", sigma, sig_lo, sig_hi)
        if (
            not isinstance(n_range, Sequence)
            or len(n_range) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in n_range)
            or not 2 <= n_range[0] < n_range[1]
        ):
            raise ValueError(f"n_range must be two ints 2 <= low < high, got {n_range!r}")
        n_samples = check_positive_int("n_samples", n_samples)
        if not n_range[0] <= n_samples <= n_range[1]:
            raise ValueError(f"n_samples must be in {tuple(n_range)}, got {n_samples}")
        self.seed = check_nonnegative_int("seed", seed)
        self.k, self.mu = float(k), float(mu)
        self.n_slider = widgets.IntSlider(
            value=n_samples,
            min=n_range[0],
            max=n_range[1],
            step=10 if n_range[0] % 10 == 0 else 1,
            description="samples",
            continuous_update=True,
            layout=widgets.Layout(width="320px"),
        )
        self.sigma_slider = slider("s (q std)", sigma, sig_lo, sig_hi, (sig_hi - sig_lo) / 200)
        self._plot = self._histogram_plot()
        self.info = info_widget(460, lines=4)
        sliders = [self.n_slider, self.sigma_slider]
        self._build_panel(sliders, "vi-estimator-plot", "vi-estimator-variance-explorer", 480)

    def _histogram_plot(self) -> AggPlot:
        """Two step histograms (moving) and the true gradient (fixed)."""
        fig = new_figure(440, 220)
        ax = fig.add_axes((0.13, 0.18, 0.83, 0.72))
        edges = np.linspace(-1.0, 1.0, 41)
        self._score_stairs = ax.stairs(
            np.zeros(40), edges, color="tab:red", lw=1.5, label="score function"
        )
        self._path_stairs = ax.stairs(
            np.zeros(40), edges, color="tab:green", lw=1.5, label="pathwise"
        )
        ax.axvline(2.0 * (self.mu - self.k), color="k", ls="--", lw=1, label="true gradient")
        ax.set(xlabel="single-sample estimate of ∂/∂μ", ylabel="density")
        ax.legend(loc="upper right", fontsize="small")
        self._ax = ax
        return AggPlot(fig, [self._score_stairs, self._path_stairs])

    def _update(self) -> None:
        n, sigma = int(self.n_slider.value), float(self.sigma_slider.value)
        self._estimate(n, sigma)
        self._update_histograms(n)
        self.info.value = html("\n".join(self._table(n)))

    def _estimate(self, n: int, sigma: float) -> None:
        """``n`` estimates from each estimator (the same draws), and the closed forms."""
        mu_t = torch.tensor(self.mu, dtype=torch.float64)
        sigma_t = torch.tensor(sigma, dtype=torch.float64)
        k_t = torch.tensor(self.k, dtype=torch.float64)
        k = self.k

        def f(z):
            return (z - k) ** 2

        sf = score_function_gradient(
            f, mu_t, sigma_t, n, generator=torch.Generator().manual_seed(self.seed)
        )
        pw = pathwise_gradient(
            f, mu_t, sigma_t, n, generator=torch.Generator().manual_seed(self.seed)
        )
        self.grad_score = {"mu": sf[0].reshape(-1), "sigma": sf[1].reshape(-1)}
        self.grad_pathwise = {"mu": pw[0].reshape(-1), "sigma": pw[1].reshape(-1)}
        true_mu, true_sigma = (float(v) for v in true_gradient_quadratic(mu_t, sigma_t, k_t))
        vs_mu, vs_sigma = (float(v) for v in variance_score_function_quadratic(mu_t, sigma_t, k_t))
        vp_mu, vp_sigma = (float(v) for v in variance_pathwise_quadratic(mu_t, sigma_t, k_t))
        self.true_gradient = {"mu": true_mu, "sigma": true_sigma}
        self.closed_form = {
            "score": {"mu": vs_mu, "sigma": vs_sigma},
            "pathwise": {"mu": vp_mu, "sigma": vp_sigma},
        }

    def _update_histograms(self, n: int) -> None:
        true_mu = self.true_gradient["mu"]
        sd = math.sqrt(self.closed_form["score"]["mu"])
        edges = np.linspace(true_mu - 4 * sd, true_mu + 4 * sd, 41)
        width = edges[1] - edges[0]
        heights = []
        for g, stairs in (
            (self.grad_score["mu"], self._score_stairs),
            (self.grad_pathwise["mu"], self._path_stairs),
        ):
            vals = np.clip(g.numpy(), edges[0], edges[-1])
            counts, _ = np.histogram(vals, bins=edges)
            dens = counts / (n * width)
            stairs.set_data(dens, edges)
            heights.append(float(dens.max()))
        top = max(heights)
        # redraw the axes (slow) only when the histograms leave the view or fill too
        # little of it; otherwise only the two step lines are redrawn (blitted)
        xlim_new = needs_limit(self._ax.get_xlim(), float(edges[0]), float(edges[-1]), slack=2.0)
        ylim_new = needs_limit(self._ax.get_ylim(), 0.0, top, slack=2.0)
        if xlim_new is not None:
            self._ax.set_xlim(*xlim_new)
            self._plot.invalidate()
        if ylim_new is not None:
            self._ax.set_ylim(0.0, 1.15 * top)
            self._plot.invalidate()

    def _table(self, n: int) -> list[str]:
        rows = ["             mean ∂μ          var ∂μ (exact)      var ∂σ (exact)"]
        for name, g, cf in (
            ("score     ", self.grad_score, self.closed_form["score"]),
            ("pathwise  ", self.grad_pathwise, self.closed_form["pathwise"]),
        ):
            m = float(g["mu"].mean())
            se = float(g["mu"].std()) / math.sqrt(n)
            rows.append(
                f"{name}  {m:7.3f} ± {se:5.3f}   {float(g['mu'].var()):8.3f} ({cf['mu']:8.3f})"
                f"   {float(g['sigma'].var()):8.3f} ({cf['sigma']:8.3f})"
            )
        true_mu, true_sigma = self.true_gradient["mu"], self.true_gradient["sigma"]
        rows.append(f"true gradient ∂μ = {true_mu:.3f}, ∂σ = {true_sigma:.3f}   (n = {n})")
        return rows

    def _repr_args(self) -> str:
        return f"k={self.k:g}, mu={self.mu:g}"
