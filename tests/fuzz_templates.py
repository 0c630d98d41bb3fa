"""Fuzz templates: one valid call per public function, for tests/test_fuzz.py.

``TEMPLATES[name]`` builds ``(callable, {argument: valid value})``; the fuzz test
changes one argument at a time into a wrong one. ``NOT_FUZZED`` gives the reason
for each public callable without a template. A new public function gets a
template here (keep the sizes tiny: each call must take milliseconds).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch.distributions import Normal  # noqa: E402

from vi_helpers import (  # noqa: E402
    bbvi,
    cavi,
    checkpoint,
    data,
    elbo,
    estimators,
    evaluate,
    exact_models,
    free_energy,
    kl,
    latent,
    models,
    plots,
    train,
)

D, H, L, B = 4, 8, 2, 3  # tiny sizes: each call takes milliseconds


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand(*shape, seed=1, lo=-1.0, hi=1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(*shape, generator=gen(seed))


def vae(**kw) -> models.VariationalAutoencoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return models.VariationalAutoencoder(D, H, L, **kw)


def linear_vae() -> models.LinearGaussianVAE:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return models.LinearGaussianVAE(D, L)


def x01(n: int = B) -> torch.Tensor:
    return rand(n, D, seed=2, lo=0.0, hi=1.0)


def spd(seed: int) -> torch.Tensor:
    a = rand(2, 2, seed=seed)
    return a @ a.T + torch.eye(2)


def axes(n: int = 1):
    fig, ax = plt.subplots(1, n, figsize=(2 * n, 2))
    return ax


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="vi_fuzz_"))


# -- templates: a valid call, and what the function documents about its arguments --------------
@dataclass
class Template:
    build: object  # () -> (callable, {argument name: valid value})
    nan_ok: tuple[str, ...] = ()  # arguments documented to let NaN/inf through
    inf_result_ok: bool = False  # e.g. a KL that is +inf where p rules out what q allows
    also_named: dict = field(default_factory=dict)  # argument -> other names a message may use
    raises_ok: tuple[type, ...] = ()  # e.g. FileNotFoundError for a path
    examples: int = 20


TEMPLATES: dict[str, Template] = {}


def template(name: str, **opts):
    def register(build):
        TEMPLATES[name] = Template(build, **opts)
        return build
    return register


def t(name, fn, **opts):
    """Register ``fn(**kwargs)``: ``t("kl.kl_x", lambda: (kl.kl_x, dict(...)))``."""
    template(name, **opts)(fn)


# kl
t("kl.kl_standard_normal_per_dim", lambda: (kl.kl_standard_normal_per_dim,
  dict(mu=rand(B, L), log_var=rand(B, L, seed=3))), nan_ok=("mu", "log_var"))
t("kl.kl_standard_normal", lambda: (kl.kl_standard_normal,
  dict(mu=rand(B, L), log_var=rand(B, L, seed=3))))
for _name in ("kl_univariate_normal", "cross_entropy_normal"):
    t(f"kl.{_name}", lambda _n=_name: (getattr(kl, _n), dict(
        mu_q=rand(3), sigma_q=rand(3, seed=4, lo=0.5, hi=2), mu_p=rand(3, seed=5),
        sigma_p=rand(3, seed=6, lo=0.5, hi=2))))
t("kl.kl_diag_normal", lambda: (kl.kl_diag_normal, dict(
    mu_q=rand(B, L), log_var_q=rand(B, L, seed=3), mu_p=rand(B, L, seed=4),
    log_var_p=rand(B, L, seed=5))))
t("kl.kl_full_normal", lambda: (kl.kl_full_normal, dict(
    mu_q=rand(2), cov_q=spd(3), mu_p=rand(2, seed=4), cov_p=spd(5))))
t("kl.entropy_normal", lambda: (kl.entropy_normal, dict(log_var=rand(B, L))))
t("kl.kl_bernoulli", lambda: (kl.kl_bernoulli, dict(
    p_q=rand(3, lo=0.1, hi=0.9), p_p=rand(3, seed=3, lo=0.1, hi=0.9))), inf_result_ok=True)
_probs = lambda seed: torch.softmax(rand(2, 3, seed=seed), dim=-1)  # noqa: E731
for _name in ("kl_categorical", "cross_entropy_categorical"):
    t(f"kl.{_name}", lambda _n=_name: (getattr(kl, _n), dict(probs_q=_probs(1), probs_p=_probs(2))),
      inf_result_ok=True)
t("kl.entropy_categorical", lambda: (kl.entropy_categorical, dict(probs=_probs(1))))
t("kl.kl_monte_carlo", lambda: (kl.kl_monte_carlo, dict(
    q=Normal(torch.zeros(3), torch.ones(3)), p=Normal(torch.ones(3), torch.ones(3)),
    n_samples=8, generator=gen())))
t("kl.draw_samples", lambda: (kl.draw_samples, dict(
    dist=Normal(torch.zeros(3), torch.ones(3)), n_samples=4, generator=gen())))

# elbo
t("elbo.gaussian_log_likelihood", lambda: (elbo.gaussian_log_likelihood, dict(
    x=x01(), x_hat=rand(B, D, seed=3), log_var=0.5)), nan_ok=("x_hat",))
t("elbo.bernoulli_log_likelihood", lambda: (elbo.bernoulli_log_likelihood, dict(
    x=x01(), logits=rand(B, D, seed=3))), nan_ok=("logits",))
t("elbo.log_mean_exp", lambda: (elbo.log_mean_exp, dict(x=rand(5, B), dim=0)), nan_ok=("x",))
t("elbo.elbo_monte_carlo", lambda: (elbo.elbo_monte_carlo, dict(
    log_joint=lambda z: -0.5 * z.pow(2), q=Normal(torch.zeros(3), torch.ones(3)),
    n_samples=4, generator=gen())))
t("elbo.elbo_analytic_kl", lambda: (elbo.elbo_analytic_kl, dict(
    expected_log_lik=rand(B), kl=rand(B, seed=3, lo=0, hi=1))))
t("elbo.iwae_bound", lambda: (elbo.iwae_bound, dict(log_w=rand(5, B))), nan_ok=("log_w",))

# estimators
for _name in ("score_function_gradient", "pathwise_gradient"):
    t(f"estimators.{_name}", lambda _n=_name: (getattr(estimators, _n), dict(
        f=lambda z: z.pow(2).sum(dim=-1), mu=rand(2), sigma=rand(2, seed=3, lo=0.5, hi=1.5),
        n_samples=4, generator=gen())))
for _name in ("true_gradient_quadratic", "variance_score_function_quadratic",
              "variance_pathwise_quadratic"):
    t(f"estimators.{_name}", lambda _n=_name: (getattr(estimators, _n), dict(
        mu=rand(3), sigma=rand(3, seed=3, lo=0.5, hi=1.5), k=rand(3, seed=4))))
t("bbvi.fit_gaussian_vi", lambda: (bbvi.fit_gaussian_vi, dict(
    log_joint=lambda z: -0.5 * z.pow(2).sum(dim=-1), dim=2, n_steps=3, n_samples=4,
    learning_rate=0.05, seed=0)), examples=12)

# models
t("models.reparameterize", lambda: (models.reparameterize, dict(
    mu=rand(B, L), log_var=rand(B, L, seed=3), generator=gen())))
t("models.VariationalDistribution", lambda: (models.VariationalDistribution, dict(
    input_size=D, hidden_size=H, latent_size=L)))
t("models.GenerativeModel", lambda: (models.GenerativeModel, dict(
    latent_size=L, hidden_size=H, output_size=D)))
t("models.VariationalAutoencoder", lambda: (models.VariationalAutoencoder, dict(
    input_size=D, hidden_size=H, latent_size=L, likelihood="gaussian", beta=1.0,
    free_bits=0.0)))
t("models.VariationalAutoencoder.forward", lambda: (vae().forward, dict(x=x01())))
t("models.VariationalAutoencoder.encode", lambda: (vae().encode, dict(x=x01())))
t("models.VariationalAutoencoder.decode", lambda: (vae().decode, dict(z=rand(B, L))))
t("models.VariationalAutoencoder.elbo", lambda: (vae(likelihood="bernoulli").elbo, dict(
    x=x01(), n_samples=2, generator=gen())))
t("models.VariationalAutoencoder.sample", lambda: (vae().sample, dict(n=3, generator=gen())))
t("models.VariationalAutoencoder.loss_function", lambda: (vae().loss_function, dict(
    x=x01(), x_hat=rand(B, D), mean=rand(B, L, seed=3), log_var=rand(B, L, seed=4), beta=1.0)),
  nan_ok=("x_hat", "mean", "log_var"), also_named={"mean": ("mu",), "x": ("x_hat",)})
t("models.LinearGaussianVAE", lambda: (models.LinearGaussianVAE, dict(input_size=D, latent_size=L)))
for _m, _arg in (("encode", "x"), ("analytic_elbo", "x"), ("exact_log_likelihood", "x"),
                 ("forward", "x"), ("decode", "z")):
    t(f"models.LinearGaussianVAE.{_m}", lambda _m=_m, _a=_arg: (
        getattr(linear_vae(), _m), {_a: x01() if _a == "x" else rand(B, L)}))

# exact models (re-exported by models: one template each)
_cg = exact_models.ConjugateGaussianModel
t("exact_models.ConjugateGaussianModel", lambda: (_cg, dict(mu0=0.5, sigma0=1.0, sigma=2.0)))
for _m in ("posterior", "log_evidence"):
    t(f"exact_models.ConjugateGaussianModel.{_m}", lambda _m=_m: (getattr(_cg(), _m),
      dict(x=rand(5))))
t("exact_models.ConjugateGaussianModel.log_joint", lambda: (_cg().log_joint, dict(
    x=rand(5), z=rand(4, seed=3))))
t("exact_models.ConjugateGaussianModel.elbo", lambda: (_cg().elbo, dict(
    x=rand(5), q_mu=0.3, q_sigma=0.7)))
t("exact_models.ConjugateGaussianModel.sample", lambda: (_cg().sample, dict(n=4, generator=gen())))
t("exact_models.ProbabilisticPCA", lambda: (exact_models.ProbabilisticPCA, dict(latent_size=1)))
t("exact_models.ProbabilisticPCA.fit", lambda: (
    exact_models.ProbabilisticPCA(1).fit, dict(x=rand(10, 3))))
t("exact_models.ProbabilisticPCA.log_likelihood", lambda: (
    exact_models.ProbabilisticPCA(1).fit(rand(10, 3)).log_likelihood, dict(x=rand(4, 3, seed=5))))
_y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
t("exact_models.BayesianLogisticRegression", lambda: (exact_models.BayesianLogisticRegression,
  dict(x=rand(5, 2), y=_y.clone(), prior_precision=1.0)))
t("exact_models.BayesianLogisticRegression.log_joint", lambda: (
    exact_models.BayesianLogisticRegression(rand(5, 2), _y.clone()).log_joint,
    dict(w=rand(3, 2, seed=4))), nan_ok=("w",))
t("exact_models.BayesianLogisticRegression.grid_posterior", lambda: (
    exact_models.BayesianLogisticRegression(rand(5, 2), _y.clone()).grid_posterior,
    dict(lim=3.0, n=20)))

# cavi
t("cavi.NormalGamma", lambda: (cavi.NormalGamma, dict(loc=0.0, kappa=1.0, a=2.0, b=1.0)))
t("cavi.MeanFieldNormalGamma", lambda: (cavi.MeanFieldNormalGamma, dict(
    m=0.0, s=1.0, a=2.0, b=1.0)))
t("cavi.NormalGammaModel", lambda: (cavi.NormalGammaModel, dict(
    mu0=0.0, kappa0=1.0, a0=1.0, b0=1.0)))
for _m in ("posterior", "log_evidence"):
    t(f"cavi.NormalGammaModel.{_m}", lambda _m=_m: (getattr(cavi.NormalGammaModel(), _m),
      dict(x=rand(6))))
t("cavi.NormalGammaModel.cavi", lambda: (cavi.NormalGammaModel().cavi, dict(x=rand(6), n_iter=3)))
t("cavi.NormalGammaModel.elbo", lambda: (cavi.NormalGammaModel().elbo, dict(
    x=rand(6), q=cavi.MeanFieldNormalGamma(0.0, 1.0, 2.0, 1.0))))
t("cavi.NormalGammaModel.sample", lambda: (cavi.NormalGammaModel().sample, dict(
    n=4, generator=gen())))
t("cavi.cavi_update_mu", lambda: (cavi.cavi_update_mu, dict(
    x=rand(6), e_tau=1.0, mu0=0.0, kappa0=1.0)))
t("cavi.cavi_update_tau", lambda: (cavi.cavi_update_tau, dict(
    x=rand(6), m=0.1, s=0.7, mu0=0.0, kappa0=1.0, a0=1.0, b0=1.0)))
t("cavi.gamma_entropy", lambda: (cavi.gamma_entropy, dict(a=2.0, b=1.5)))

# train
t("train.make_adam", lambda: (train.make_adam, dict(
    params=list(vae().parameters()), learning_rate=1e-3)))
t("train.train_model", lambda: (train.train_model, dict(
    model=vae(likelihood="bernoulli"), dataset=x01(8), n_epochs=1, learning_rate=1e-3,
    batch_size=4, seed=0, validation_data=x01(4), progress=False)), examples=15,
  also_named={"dataset": ("dataset batch",)})
t("train.fit_linear_vae", lambda: (train.fit_linear_vae, dict(
    x=rand(12, D), latent_size=L, n_steps=3, seed=0)), examples=12)
t("train.maximize_analytic_elbo", lambda: (train.maximize_analytic_elbo, dict(
    model=linear_vae(), x_fit=x01(6), n_steps=3, learning_rate=0.05)), examples=12)

# data
t("data.load_digits", lambda: (data.load_digits, dict(
    split="test", test_fraction=0.2, seed=0, binarize=False)), examples=10)
t("data.make_synthetic", lambda: (data.make_synthetic, dict(name="moons", n=20, noise=0.1, seed=0)))
t("data.dynamic_binarize", lambda: (data.dynamic_binarize, dict(x=x01(), generator=gen())))
t("data.batches", lambda: (lambda **kw: list(data.batches(**kw)), dict(
    x=x01(5), batch_size=2, shuffle=True, generator=gen())))
t("data.Minibatches", lambda: (lambda **kw: list(data.Minibatches(**kw)), dict(
    x=x01(5), batch_size=2, shuffle=True, generator=gen())))


def _idx_file() -> Path:
    path = tmpdir() / "tiny-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3]))
    return path


t("data.read_idx", lambda: (data.read_idx, dict(path=_idx_file())),
  raises_ok=(FileNotFoundError,))

# evaluate, free energy
_model_x = lambda **kw: dict(model=vae(likelihood="bernoulli"), x=x01(), **kw)  # noqa: E731
t("evaluate.log_likelihood_is", lambda: (evaluate.log_likelihood_is, _model_x(
    k=5, chunk_size=2, generator=gen())))
t("evaluate.iwae_curve", lambda: (evaluate.iwae_curve, _model_x(ks=(1, 3), generator=gen())))
t("evaluate.active_units", lambda: (evaluate.active_units, dict(
    model_or_means=vae(), x=x01(), threshold=0.01)))
for _name in ("kl_per_dimension", "reconstruction_error"):
    t(f"evaluate.{_name}", lambda _n=_name: (getattr(evaluate, _n), _model_x()))
t("evaluate.elbo", lambda: (evaluate.elbo, _model_x(n_samples=2, generator=gen())))
t("free_energy.free_energy", lambda: (free_energy.free_energy, _model_x(
    mu=rand(B, L), log_var=rand(B, L, seed=3), n_samples=2, generator=gen())),
  also_named={"x": ("mu",), "model": ("mu",)})
t("free_energy.optimize_local_posterior", lambda: (free_energy.optimize_local_posterior,
  _model_x(n_steps=3, learning_rate=0.05, n_samples=2, seed=0)), examples=12)
t("free_energy.amortization_gap", lambda: (free_energy.amortization_gap, _model_x(
    k=4, n_steps=2, n_samples=2, n_eval_samples=4, chunk_size=2, seed=0)), examples=10)

# plots
t("plots.figures_dir", lambda: (plots.figures_dir, dict(start=tmpdir())))
t("plots.save_figure", lambda: (plots.save_figure, dict(
    fig=plt.figure(figsize=(1, 1)), name="fuzz", directory=tmpdir(), dpi=20)), examples=10)
t("plots.image_grid", lambda: (plots.image_grid, dict(images=x01(5), nrow=2, pad=1)))
t("plots.plot_image_grid", lambda: (plots.plot_image_grid, dict(ax=axes(), images=x01(5))))


def _history():
    h = train.History()
    for v in (3.0, 2.0):
        h.append(v)
        h.elbo.append(-v)
        h.recon.append(v - 1)
        h.kl.append(1.0)
    return h


t("plots.plot_training_curves", lambda: (plots.plot_training_curves, dict(
    axes=axes(3), history=_history())))
t("plots.plot_gaussian_ellipse", lambda: (plots.plot_gaussian_ellipse, dict(
    ax=axes(), mu=rand(2), cov=spd(3), n_std=2.0)))
t("plots.plot_latent_scatter", lambda: (plots.plot_latent_scatter, dict(
    ax=axes(), z=rand(5, 2), labels=torch.tensor([0, 1, 2, 1, 0]))))
t("plots.plot_density_1d", lambda: (plots.plot_density_1d, dict(
    ax=axes(), grid=torch.linspace(-1, 1, 7), density=rand(7, lo=0, hi=1))))

# latent
for _name in ("lerp", "slerp"):
    t(f"latent.{_name}", lambda _n=_name: (getattr(latent, _n), dict(
        z0=rand(L), z1=rand(L, seed=3), t=0.3)))


# checkpoint
def _saved() -> Path:
    path = tmpdir() / "model.safetensors"
    checkpoint.save_checkpoint(vae(), path)
    return path


t("checkpoint.save_checkpoint", lambda: (checkpoint.save_checkpoint, dict(
    model=vae(), path=tmpdir() / "m.safetensors", metadata={"epochs": 1})),
  raises_ok=(FileNotFoundError,))
t("checkpoint.load_checkpoint", lambda: (checkpoint.load_checkpoint, dict(
    path=_saved(), model=vae(), map_location="cpu")), raises_ok=(FileNotFoundError,))
t("checkpoint.read_checkpoint_metadata", lambda: (checkpoint.read_checkpoint_metadata, dict(
    path=_saved())), raises_ok=(FileNotFoundError,))

# Added this round alongside the fuzz test: their argument checks are tested in their own
# test files (tests/test_<module>.py); fuzz templates for them are still to be written.
_PENDING = "new this round; bad-input tests in its own test file, fuzz template pending"

NOT_FUZZED = {
    "bbvi.FullCovarianceVIResult": _PENDING,
    "bbvi.bbvi_full_covariance": _PENDING,
    "cavi_mixture.GMMResult": _PENDING,
    "cavi_mixture.gmm_update_assignments": _PENDING,
    "cavi_mixture.gmm_update_means": _PENDING,
    "cavi_mixture.gmm_elbo": _PENDING,
    "cavi_mixture.gmm_cavi": _PENDING,
    "diffusion.noise_schedule": _PENDING,
    "diffusion.alpha_bar": _PENDING,
    "diffusion.forward_marginal": _PENDING,
    "diffusion.forward_sample": _PENDING,
    "diffusion.forward_step": _PENDING,
    "diffusion.forward_posterior": _PENDING,
    "diffusion.reverse_variance": _PENDING,
    "diffusion.elbo_weights": _PENDING,
    "diffusion.elbo_offsets": _PENDING,
    "diffusion.Denoiser": _PENDING,
    "diffusion.GaussianDiffusion": _PENDING,
    "diffusion.dequantize": _PENDING,
    "diffusion_gaussian.gaussian_reverse_kernels": _PENDING,
    "diffusion_gaussian.gaussian_data_elbo": _PENDING,
    "estimators.score_function_terms": _PENDING,
    "estimators.pathwise_terms": _PENDING,
    "estimators.elbo_gradient_pathwise": _PENDING,
    "estimators.variance_cosine": _PENDING,
    "flow_vae.FlowVAE": _PENDING,
    "flow_vae.optimize_local_flow": _PENDING,
    "flow_vae.inference_gaps": _PENDING,
    "flows.planar_constrain_u": _PENDING,
    "flows.planar_forward": _PENDING,
    "flows.planar_inverse": _PENDING,
    "flows.FlowFamily": _PENDING,
    "flows.mean_field_gaussian": _PENDING,
    "flows.full_covariance_gaussian": _PENDING,
    "flows.FlowVIResult": _PENDING,
    "flows.fit_flow_vi": _PENDING,
    "flows.grid_log_density": _PENDING,
    "flows.Banana": _PENDING,
    "free_energy.expected_free_energy": _PENDING,
    "iwae.ImportanceWeightedAutoencoder": _PENDING,
    "iwae.iwae_log_weights": _PENDING,
    "learning.conjugate_elbo_gradients": _PENDING,
    "learning.gaussian_groups_mle": _PENDING,
    "learning.variational_em_gaussian_groups": _PENDING,
    "learning.linear_vae_posterior": _PENDING,
    "learning.data_level_elbo_terms": _PENDING,
    "optim.DescentResult": _PENDING,
    "optim.gradient_descent_backtracking": _PENDING,
    "train.History": "a result container (a list with attributes); built by train_model",
    "bbvi.GaussianVIResult": "a result container returned by fit_gaussian_vi",
    "cavi.CAVIResult": "a result container returned by NormalGammaModel.cavi",
    "data.load_mnist": "needs the MNIST files; tests/test_data.py covers bad roots, files "
                       "and downloads (with the deadline test)",
    "hierarchical.TopDownPass": "a NamedTuple of tensors returned by TwoLayerVAE.top_down",
    "hierarchical.TwoLayerVAE": "an abstract base; HierarchicalVAE is fuzzed",
}


# hierarchical models (modules that other branches extend: their __all__ is walked)
def _hvae():
    from vi_helpers.hierarchical import HierarchicalVAE

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return HierarchicalVAE(D, H, (L, 1))


def _hierarchical_templates():
    from vi_helpers import hierarchical as hi
    from vi_helpers import hierarchical_linear as hl

    four = lambda: dict(mu_q=rand(B, L), log_var_q=rand(B, L, seed=3),  # noqa: E731
                        mu_p=rand(B, L, seed=4), log_var_p=rand(B, L, seed=5))
    t("hierarchical.kl_diag_normal_per_dim", lambda: (hi.kl_diag_normal_per_dim, four()),
      nan_ok=("mu_q", "log_var_q", "mu_p", "log_var_p"))
    t("hierarchical.precision_weighted_merge", lambda: (hi.precision_weighted_merge, dict(
        mu_hat=rand(B, L), log_var_hat=rand(B, L, seed=3), mu_p=rand(B, L, seed=4),
        log_var_p=rand(B, L, seed=5))), nan_ok=("mu_hat", "log_var_hat", "mu_p", "log_var_p"))
    t("hierarchical.vae_hidden_size_for", lambda: (hi.vae_hidden_size_for, dict(
        n_parameters=500, input_size=D, latent_size=L)))
    t("hierarchical.HierarchicalVAE", lambda: (hi.HierarchicalVAE, dict(
        input_size=D, hidden_size=H, latent_sizes=(L, 1), beta=1.0)))
    t("hierarchical.HierarchicalVAE.training_loss", lambda: (_hvae().training_loss, dict(
        x=x01(), beta=1.0, free_bits=0.0)))
    for m, kw in (("elbo", dict(n_samples=2)), ("iwae_bound", dict(k=3, chunk_size=2)),
                  ("kl_per_layer", dict(n_samples=2)), ("active_units", dict(n_samples=2))):
        t(f"hierarchical.HierarchicalVAE.{m}", lambda m=m, kw=kw: (getattr(_hvae(), m), dict(
            x=x01(), generator=gen(), **kw)))
    t("hierarchical.HierarchicalVAE.sample", lambda: (_hvae().sample, dict(n=3, generator=gen())))
    t("hierarchical_linear.LinearHierarchicalVAE", lambda: (hl.LinearHierarchicalVAE, dict(
        input_size=D, latent_sizes=(L, 1), beta=1.0)))
    for m in ("analytic_elbo", "exact_log_likelihood", "analytic_elbo_terms"):
        t(f"hierarchical_linear.LinearHierarchicalVAE.{m}", lambda m=m: (
            getattr(hl.LinearHierarchicalVAE(D, (L, 1)), m), dict(x=x01())))
    t("hierarchical_linear.moment_matched_points", lambda: (hl.moment_matched_points, dict(
        x=rand(12, D))))
    t("hierarchical_linear.fit_linear_hierarchical_vae", lambda: (
        hl.fit_linear_hierarchical_vae, dict(x=rand(12, D), latent_sizes=(L, 1), n_steps=3)),
      examples=10)


_hierarchical_templates()


# widgets: the constructors (what a notebook calls) and the numeric helpers they export
def _widget_templates():
    from vi_helpers import widgets as w

    t("widgets.render_png", lambda: (w.render_png, dict(image_2d=rand(4, 4, lo=0, hi=1),
                                                      scale=2)))
    t("widgets.LatentExplorer", lambda: (w.LatentExplorer, dict(model=vae(), limit=3.0)),
      examples=8)
    t("widgets.LatentMap", lambda: (w.LatentMap, dict(
        model=vae(), x=x01(6), labels=torch.arange(6) % 3, map_size=160)), examples=8)
    t("widgets.Interpolation", lambda: (w.Interpolation, dict(
        model=vae(), x_a=x01(1), x_b=x01(2)[1:], steps=3)), examples=8)
    t("widgets.PriorSampler", lambda: (w.PriorSampler, dict(model=vae(), n=4, seed=0)),
      examples=8)
    t("widgets.KLExplorer", lambda: (w.KLExplorer, dict(mu=0.0, sigma=1.0, n_grid=201)),
      examples=8)
    t("widgets.ELBOGapExplorer", lambda: (w.ELBOGapExplorer, dict(model=_cg(), x=rand(5))),
      examples=8)
    t("widgets.EstimatorVarianceExplorer", lambda: (w.EstimatorVarianceExplorer, dict(
        k=0.0, mu=1.0, sigma=1.0, n_samples=50, seed=0)), examples=8)
    results = lambda: [dict(beta=b, rate=r, distortion=d, reconstructions=x01(4))  # noqa: E731
                       for b, r, d in ((0.5, 3.0, 1.0), (1.0, 2.0, 1.5))]
    t("widgets.BetaExplorer", lambda: (w.BetaExplorer, dict(results=results())), examples=8)
    t("widgets.kl_normal_mixture", lambda: (w.kl_normal_mixture, dict(
        mu=0.0, sigma=1.0, weights=(0.5, 0.5), means=(-1.0, 1.0), stds=(0.5, 0.5), n_grid=201)))


_widget_templates()
