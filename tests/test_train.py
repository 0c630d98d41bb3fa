"""Tests for vi_helpers.train: the seed's train_model and fit_linear_vae.

References are independent of the trainer: the model's own ELBO evaluated
separately, hand-built schedules, spies on the optimizer's helpers, and the
closed-form pPCA optimum (Tipping & Bishop 1999; Lucas et al. 2019).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from vi_helpers import VariationalAutoencoder, train_model
from vi_helpers.models import ProbabilisticPCA
from vi_helpers.train import History, fit_linear_vae

D, H, L = 64, 32, 4


def _vae(seed=0, **kwargs):
    torch.manual_seed(seed)
    return VariationalAutoencoder(D, H, L, **kwargs)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _equal_params(a, b):
    return all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


# ----------------------------------------------------------------------- the seed's call
def test_seed_call_lowers_the_loss(digits_small):
    model = _vae()
    losses = train_model(model, digits_small, 8, 0.005)  # positional, as in the seed
    assert isinstance(losses, list) and isinstance(losses, History)
    assert len(losses) == 8 and all(isinstance(v, float) for v in losses)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 1.0
    assert losses.status == "completed" and losses.message == ""
    assert losses.losses == list(losses)
    assert "8 epochs" in repr(losses)


def test_history_attributes_and_elbo_identities(digits_small):
    model = _vae(likelihood="gaussian", obs_log_var=-2.0)
    h = train_model(model, digits_small, 4, 0.005, seed=0, progress=False)
    for name in ("elbo", "recon", "kl", "beta", "lr", "epoch_time"):
        assert len(getattr(h, name)) == 4, name
    assert h.val_elbo == []
    assert h.beta == [1.0] * 4 and h.lr == [0.005] * 4
    assert all(t > 0 for t in h.epoch_time)
    for i in range(4):
        # gaussian: recon is -log p(x|z); loss = recon + KL; ELBO = -loss
        assert abs(h[i] - (h.recon[i] + h.kl[i])) < 1e-3
        assert abs(h.elbo[i] + h[i]) < 1e-3
        assert h.kl[i] >= 0


def test_history_mse_elbo_includes_gaussian_constant(digits_small):
    model = _vae()
    h = train_model(model, digits_small, 2, 0.005, seed=0, progress=False)
    const = 0.5 * D * math.log(math.pi)  # the seed's loss is the var-1/2 NLL minus this
    for i in range(2):
        assert abs(h.elbo[i] - (-h.recon[i] - const - h.kl[i])) < 1e-3


def test_history_elbo_matches_separate_evaluation(digits_small):
    model = _vae(likelihood="bernoulli")
    train_model(model, digits_small, 3, 0.01, seed=0, progress=False)
    # one more epoch with a negligible step: the weights are those evaluated below
    h = train_model(model, digits_small, 1, 1e-12, seed=1, progress=False)
    s = 50
    with torch.no_grad():
        per_sample = torch.stack(
            [model.elbo(digits_small, generator=torch.Generator().manual_seed(i)) for i in range(s)]
        )  # (S, N) single-sample ELBOs
    reference = float(per_sample.mean())
    # the history is a mean of N single-sample estimates: its standard error
    se = math.sqrt(float(per_sample.var(dim=0).mean()) / digits_small.shape[0])
    assert abs(h.elbo[0] - reference) < 5 * se + 1e-3, (h.elbo[0], reference, se)


# ------------------------------------------------------------------------- dataset forms
def _batches_list(x):
    return [x[:128], x[128:]]


@pytest.mark.parametrize(
    "make",
    [
        lambda x: DataLoader(TensorDataset(x), batch_size=64, shuffle=False),
        lambda x: list(x.split(64)),
        lambda x: x.reshape(4, 64, D),
        lambda x: [(b,) for b in x.split(100)],
    ],
    ids=["dataloader", "list", "stacked_tensor", "tuples"],
)
def test_accepts_dataset_forms(digits_small, make):
    h = train_model(_vae(), make(digits_small), 3, 0.005, seed=0, progress=False)
    assert len(h) == 3 and h.status == "completed"
    assert all(math.isfinite(v) for v in h)


def test_list_of_batches_equals_unshuffled_tensor(digits_small):
    a, b = _vae(), _vae()
    ha = train_model(a, digits_small, 3, 0.005, batch_size=128, shuffle=False, seed=4,
                     progress=False)
    hb = train_model(b, _batches_list(digits_small), 3, 0.005, seed=4, progress=False)
    assert list(ha) == list(hb)
    assert _equal_params(_params(a), _params(b))


def test_one_shot_generator_refused(digits_small):
    with pytest.raises(TypeError, match="dataset"):
        train_model(_vae(), (b for b in digits_small.split(64)), 2, progress=False)


def test_matches_the_seeds_adam_loop(digits_small):
    """train_model's (fused) Adam against the seed's loop with torch's default Adam:
    same batches in order, same update up to float32 rounding."""
    a, b = _vae(), _vae()
    batches = _batches_list(digits_small)
    h = train_model(a, batches, 3, 0.005, seed=0, progress=False)
    opt = torch.optim.Adam(b.parameters(), lr=0.005, foreach=False)
    torch.manual_seed(0)  # train_model(seed=0) draws its noise from this state
    ref = []
    for _ in range(3):
        total = 0.0
        for x in batches:
            x_hat, mean, log_var = b(x)
            loss = b.loss_function(x, x_hat, mean, log_var)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * x.shape[0]
        ref.append(total / digits_small.shape[0])
    assert h == pytest.approx(ref, rel=1e-4)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_make_adam_fuses_where_it_can():
    from vi_helpers.train import make_adam

    params = list(_vae().parameters())
    assert make_adam(params, 1e-3).defaults["fused"] is True
    assert make_adam([torch.zeros(3, requires_grad=True, device="meta")], 1e-3).defaults[
        "fused"] is None


def test_mixed_precision_bfloat16(digits_small):
    """bfloat16 autocast: the first batch's loss is the float32 loss up to bfloat16's
    rounding (8 bits of mantissa), and training still tracks the float32 run."""
    batches = _batches_list(digits_small)
    a, b = _vae(), _vae()
    ha = train_model(a, batches, 5, 0.005, seed=0, progress=False)
    hb = train_model(b, batches, 5, 0.005, seed=0, progress=False,
                     mixed_precision=torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in b.parameters())
    assert hb[-1] < hb[0]
    assert hb == pytest.approx(list(ha), rel=0.03)
    assert list(hb) != list(ha)  # it did run in bfloat16
    with pytest.raises(ValueError, match="mixed_precision"):
        train_model(_vae(), batches, 1, progress=False, mixed_precision=torch.float16)


# ---------------------------------------------------------------------------- determinism
def test_same_seed_bitwise_equal_different_seed_differs(digits_small):
    runs = []
    for seed in (7, 7, 8):
        model = _vae()
        h = train_model(model, digits_small, 3, 0.005, seed=seed, progress=False)
        runs.append((list(h), model.state_dict()))
    (la, sa), (lb, sb), (lc, sc) = runs
    assert la == lb
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert la != lc
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_seeded_run_leaves_global_rng_untouched(digits_small):
    model = _vae()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train_model(model, digits_small, 2, 0.005, seed=0, progress=False)
    assert torch.equal(torch.get_rng_state(), before)


# -------------------------------------------------------------------------- failure modes
class _RecordingVAE(VariationalAutoencoder):
    """Records the weights and loss of every loss evaluation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def loss_function(self, x, x_hat, mean, log_var, **kwargs):
        out = super().loss_function(x, x_hat, mean, log_var, **kwargs)
        loss = out[0] if isinstance(out, tuple) else out
        self.calls.append((_params(self), bool(torch.isfinite(loss))))
        return out


def _blow_up_from_epoch(n_batches, epoch, scale):
    """A transform that scales the data by ``scale`` from epoch ``epoch`` on."""
    count = {"n": 0}

    def transform(x):
        count["n"] += 1
        return x * scale if count["n"] > n_batches * epoch else x

    return transform


@pytest.mark.parametrize(
    "learning_rate, scale, transform",
    [(10.0, 1.0, None), (1e-3, 1e6, None), (5e-3, 1.0, _blow_up_from_epoch(2, 2, 1e6))],
    ids=["absurd_lr", "huge_data", "huge_data_at_epoch_2"],
)
def test_nan_guard_restores_last_finite_weights(
    digits_small, learning_rate, scale, transform, capsys
):
    torch.manual_seed(0)
    model = _RecordingVAE(D, H, L)
    initial = _params(model)
    h = train_model(model, digits_small * scale, 20, learning_rate, seed=0, transform=transform,
                    progress=False)
    assert h.status == "diverged"
    assert "diverged" in h.message and "learning_rate" in h.message
    assert "diverged" in capsys.readouterr().out
    assert len(h) < 20 and len(h.elbo) == len(h)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert model.calls[-1][1] is False  # the run stopped on a non-finite loss
    finite = [w for w, ok in model.calls if ok]
    # the weights before the bad step: the last ones that gave a finite loss
    expected = finite[-1] if finite else initial
    assert _equal_params(_params(model), expected)
    if transform is not None:
        assert len(h) == 2 and len(finite) == 4  # two good epochs of two batches
        assert not _equal_params(expected, initial)


def test_keyboard_interrupt_keeps_model_and_history(digits_small, capsys):
    model = _vae()
    n_batches = 2  # 256 rows, batch_size 128
    calls = {"n": 0, "snapshot": None}

    def transform(x):
        if calls["n"] == 3 * n_batches:  # first batch of epoch index 3
            calls["snapshot"] = _params(model)
            raise KeyboardInterrupt
        calls["n"] += 1
        return x

    initial = _params(model)
    h = train_model(model, digits_small, 10, 0.005, seed=0, transform=transform,
                    progress=False)
    assert h.status == "interrupted"
    assert len(h) == 3 and len(h.elbo) == 3
    assert "interrupted" in capsys.readouterr().out
    assert _equal_params(_params(model), calls["snapshot"])  # kept, not rolled back
    assert not _equal_params(_params(model), initial)
    assert model.training  # mode restored


def test_transform_is_applied(digits_small):
    seen = []

    def transform(x):
        seen.append(x.shape)
        return (x > 0.5).to(x.dtype)

    train_model(_vae(likelihood="bernoulli"), digits_small, 2, 0.005, transform=transform,
                progress=False)
    assert len(seen) == 4


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("beta", [None, 2.0])
def test_kl_warmup_ramps_beta(digits_small, beta):
    h = train_model(_vae(), digits_small, 6, 0.005, beta=beta, kl_warmup_epochs=4, seed=0,
                    progress=False)
    target = 1.0 if beta is None else beta
    assert h.beta == pytest.approx([target * v for v in (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)])


def test_beta_changes_the_loss_not_the_model(digits_small):
    model = _vae()
    h = train_model(model, digits_small, 2, 0.005, beta=3.0, seed=0, progress=False)
    assert model.beta == 1.0
    assert h.beta == [3.0, 3.0]


def test_free_bits_floor_in_the_loss(digits_small):
    model = _vae()
    lam = 2.0
    h = train_model(model, digits_small, 3, 0.005, free_bits=lam, seed=0, progress=False)
    assert model.free_bits == 0.0
    for i in range(3):
        # loss = recon + sum_j max(KL_j, lambda) >= recon + L * lambda
        assert h[i] >= h.recon[i] + L * lam - 1e-3
    h0 = train_model(_vae(), digits_small, 3, 0.005, seed=0, progress=False)
    assert h[0] > h0[0]


def test_grad_clip_clips_every_step(digits_small, monkeypatch):
    original = torch.nn.utils.clip_grad_norm_
    seen = []

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        total = original(parameters, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in parameters])
        )
        seen.append((max_norm, float(total), float(after)))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    train_model(_vae(), digits_small, 2, 0.005, grad_clip=0.5, seed=0, progress=False)
    assert len(seen) == 4
    assert all(m == 0.5 for m, _, _ in seen)
    assert any(total > 0.5 for _, total, _ in seen)  # clipping did something
    assert all(after <= 0.5 * (1 + 1e-5) for _, _, after in seen)


def test_cosine_schedule_anneals_to_zero(digits_small):
    h = train_model(_vae(), digits_small, 5, 0.01, lr_schedule="cosine", seed=0, progress=False)
    assert all(a >= b for a, b in zip(h.lr, h.lr[1:], strict=False))
    assert h.lr[0] < 0.01
    assert h.lr[-1] < 1e-10
    # after e+1 of 5 epochs (2 steps each): 0.01 * (1 + cos(pi * (e+1) / 5)) / 2
    want = [0.01 * (1 + math.cos(math.pi * (e + 1) / 5)) / 2 for e in range(5)]
    assert h.lr == pytest.approx(want, abs=1e-12)


def test_callable_schedule(digits_small):
    h = train_model(_vae(), digits_small, 3, 0.01, lr_schedule=lambda e: 0.5**e, seed=0,
                    progress=False)
    assert h.lr == pytest.approx([0.01 * 0.5 ** (e + 1) for e in range(3)])


def test_validation_elbo_logged(digits, digits_small):
    val = digits[1000:1100]
    model = _vae()
    h = train_model(model, digits_small, 3, 0.005, validation_data=val, seed=0, progress=False)
    assert len(h.val_elbo) == 3
    model.eval()
    with torch.no_grad():
        want = float(model.elbo(val, generator=torch.Generator().manual_seed(0)).mean())
    assert h.val_elbo[-1] == pytest.approx(want, abs=1e-6)


def test_verbose_prints_seed_line(digits_small, capsys):
    train_model(_vae(), digits_small, 2, 0.005, seed=0, progress=False, verbose=True)
    out = capsys.readouterr().out
    assert "Epoch 0, Loss:" in out and "Epoch 1, Loss:" in out


# ---------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "args, kwargs, exc, name",
    [
        ((0,), {}, ValueError, "n_epochs"),
        ((2.0,), {}, TypeError, "n_epochs"),
        ((2, -0.1), {}, ValueError, "learning_rate"),
        ((2, 0.0), {}, ValueError, "learning_rate"),
        ((2,), {"batch_size": 0}, ValueError, "batch_size"),
        ((2,), {"beta": -1.0}, ValueError, "beta"),
        ((2,), {"free_bits": -1.0}, ValueError, "free_bits"),
        ((2,), {"grad_clip": 0.0}, ValueError, "grad_clip"),
        ((2,), {"kl_warmup_epochs": -1}, ValueError, "kl_warmup_epochs"),
        ((2,), {"lr_schedule": "linear"}, ValueError, "lr_schedule"),
        ((2,), {"seed": 1.5}, TypeError, "seed"),
        ((2,), {"transform": 3}, TypeError, "transform"),
        ((2,), {"validation_data": torch.zeros(4, D + 1)}, ValueError, "validation_data"),
    ],
)
def test_bad_arguments_name_themselves(digits_small, args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        train_model(_vae(), digits_small, *args, progress=False, **kwargs)


@pytest.mark.parametrize(
    "dataset, exc",
    [
        (torch.zeros(10, D + 1), ValueError),  # wrong width
        (torch.full((10, D), float("nan")), ValueError),
        (torch.zeros(0, D), ValueError),  # empty tensor
        ([], ValueError),  # empty list
        ([torch.zeros(4, D + 1)], ValueError),  # a batch of the wrong width
        ([torch.full((4, D), float("inf"))], ValueError),
        (42, TypeError),
    ],
)
def test_bad_datasets(dataset, exc):
    with pytest.raises(exc, match="dataset"):
        train_model(_vae(), dataset, 2, progress=False)


def test_non_module_model(digits_small):
    with pytest.raises(TypeError, match="model"):
        train_model(lambda x: x, digits_small, 2, progress=False)


# -------------------------------------------------------------------------- fit_linear_vae
@pytest.fixture(scope="module")
def digits64(digits):
    return digits.double()


@pytest.mark.parametrize("latent_size", [2, 5, 10])
def test_fit_linear_vae_reaches_ppca_optimum(digits, latent_size):
    model, history = fit_linear_vae(digits, latent_size)
    ppca = ProbabilisticPCA(latent_size).fit(digits).max_log_likelihood()
    with torch.no_grad():
        elbo = float(model.analytic_elbo(digits).double().mean())
        exact = float(model.exact_log_likelihood(digits).double().mean())
    # Lucas et al. (2019): the linear VAE's ELBO optimum is pPCA's maximum likelihood
    assert ppca - elbo < 0.05, (latent_size, ppca, elbo)
    assert elbo <= exact + 1e-3 and exact <= ppca + 1e-3  # bounds, up to float32 rounding
    assert len(history) == 1500
    assert history[-1] > history[0]
    assert model.decoder.weight.dtype == torch.float32 and not model.training


def test_fit_linear_vae_history_is_full_data_elbo(digits64):
    # the fit averages the ELBO over moment-matched points; it must equal the data average
    model, history = fit_linear_vae(digits64, 3, n_steps=200)
    with torch.no_grad():
        final = float(model.analytic_elbo(digits64).mean())
    # the last logged value precedes a final step whose size the cosine schedule made ~0
    assert abs(history[-1] - final) < 1e-6
    assert model.decoder.weight.dtype == torch.float64


def test_fit_linear_vae_small_data_uses_rows():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 15, generator=g, dtype=torch.float64) @ torch.randn(
        15, 15, generator=g, dtype=torch.float64
    )
    model, history = fit_linear_vae(x, 2, n_steps=300)
    with torch.no_grad():
        assert abs(history[-1] - float(model.analytic_elbo(x).mean())) < 1e-6


def test_fit_linear_vae_deterministic_and_rng_untouched(digits):
    torch.manual_seed(5)
    before = torch.get_rng_state()
    m1, h1 = fit_linear_vae(digits, 2, n_steps=30, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    m2, h2 = fit_linear_vae(digits, 2, n_steps=30, seed=3)
    _, h3 = fit_linear_vae(digits, 2, n_steps=30, seed=4)
    assert h1 == h2 and h1 != h3
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))


@pytest.mark.parametrize(
    "x, latent_size, kwargs, exc, name",
    [
        (None, 0, {}, ValueError, "latent_size"),
        (None, 65, {}, ValueError, "latent_size"),
        (None, 2.0, {}, TypeError, "latent_size"),
        (torch.zeros(64), 2, {}, ValueError, "x"),
        (torch.full((5, 4), float("nan")), 2, {}, ValueError, "x"),
        (torch.ones(1, 4), 2, {}, ValueError, "x"),
        (torch.ones(5, 4), 2, {}, ValueError, "x"),  # no variance
        (None, 2, {"n_steps": 0}, ValueError, "n_steps"),
        (None, 2, {"learning_rate": -1.0}, ValueError, "learning_rate"),
        (None, 2, {"seed": -1}, ValueError, "seed"),
    ],
)
def test_fit_linear_vae_bad_inputs(digits, x, latent_size, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        fit_linear_vae(digits if x is None else x, latent_size, **kwargs)


class _TwoTermModel(torch.nn.Module):
    """A model that trains through ``training_loss`` instead of forward + loss_function."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))
        self.seen_beta = []

    def training_loss(self, x, *, beta=None, free_bits=None):
        self.seen_beta.append(beta)
        recon = ((x - self.w) ** 2).sum(dim=-1).mean()
        kl = 0.5 * (self.w**2).sum()
        b = 1.0 if beta is None else beta
        return recon + b * kl, {"recon": recon.detach(), "kl": kl.detach(), "log_lik": -recon.detach()}


def test_training_loss_contract_trains_and_logs_terms():
    model = _TwoTermModel()
    x = torch.ones(32, 4)
    hist = train_model(model, x, 50, 0.1, batch_size=8, seed=0, progress=False, kl_warmup_epochs=2)
    assert hist.status == "completed"
    # optimum of |1 - w|^2 + w^2 / 2 is w = 2/3
    torch.testing.assert_close(model.w.detach(), torch.full((4,), 2 / 3), atol=0.05, rtol=0)
    assert len(hist.kl) == len(hist.elbo) == 50
    assert hist.elbo[-1] == pytest.approx(hist.recon[-1] * -1 - hist.kl[-1])
    assert model.seen_beta[0] < 1.0 and model.seen_beta[-1] == 1.0


# -- issue 11: every argument checked before a weight moves; data cast to the model's dtype -----
def _tiny(seed: int = 0, **kw) -> VariationalAutoencoder:
    torch.manual_seed(seed)
    return VariationalAutoencoder(4, 8, 2, likelihood="bernoulli", **kw)


def _weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_data_of_another_dtype_trains_as_float32(dtype):
    """Root cause 1: torch.from_numpy(x) is float64; it is cast, and the run is the same."""
    x = torch.rand(16, 4, generator=torch.Generator().manual_seed(0))
    x = x.to(dtype).float()  # values exactly representable in dtype, so both runs agree
    runs = []
    for data in (x, x.to(dtype)):
        model = _tiny()
        h = train_model(model, data, 2, 1e-2, batch_size=8, seed=0, progress=False,
                        validation_data=data[:4])
        runs.append((list(h), h.val_elbo, _weights(model)))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert _same(runs[0][2], runs[1][2])


def test_a_float64_model_trains_on_float32_data():
    model = _tiny().double()
    h = train_model(model, torch.rand(8, 4), 1, 1e-2, batch_size=4, seed=0, progress=False,
                    validation_data=torch.rand(4, 4))
    assert h.status == "completed" and next(model.parameters()).dtype == torch.float64


def test_a_float16_model_is_refused_with_the_fix():
    model = _tiny().half()
    with pytest.raises(TypeError, match=r"model has float16 weights.*model\.float\(\)"):
        train_model(model, torch.rand(8, 4), 1, progress=False)


def test_numpy_datasets_are_converted_or_refused_with_the_fix():
    import numpy as np

    model = _tiny()
    h = train_model(model, np.random.default_rng(0).random((8, 4)), 1, progress=False, seed=0)
    assert h.status == "completed"
    before = _weights(model)
    with pytest.raises(TypeError, match=r"dataset.*uint8.*torch\.from_numpy\(dataset\)\.float\(\)"):
        train_model(model, np.zeros((8, 4), dtype=np.uint8), 1, progress=False)
    assert _same(before, _weights(model))


def test_a_tuple_dataset_is_refused_before_any_weight_moves():
    """Root cause 7: (x, y) used to train on x as one batch, then fail on y."""
    model = _tiny()
    before = _weights(model)
    x, y = torch.rand(8, 4), torch.arange(8)
    with pytest.raises(TypeError, match=r"dataset must not be a tuple.*train_model\(model, x\)"):
        train_model(model, (x, y), 1, progress=False)
    with pytest.raises(ValueError, match="dataset batch 1"):  # a list is checked whole, up front
        train_model(model, [x, torch.rand(8, 5)], 1, progress=False)
    assert _same(before, _weights(model))


def test_bad_validation_data_is_refused_before_any_weight_moves():
    model = _tiny()
    before = _weights(model)
    with pytest.raises(ValueError, match="validation_data must have last dimension 4"):
        train_model(model, torch.rand(8, 4), 1, progress=False, validation_data=torch.rand(3, 5))
    with pytest.raises(ValueError, match="validation_data contains 1 NaN"):
        bad = torch.rand(3, 4)
        bad[0, 0] = math.nan
        train_model(model, torch.rand(8, 4), 1, progress=False, validation_data=bad)

    class NoElbo(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(4))

        def training_loss(self, x, **kw):
            loss = ((x - self.w) ** 2).sum(-1).mean()
            return loss, {"recon": loss, "kl": loss * 0, "log_lik": -loss}

    with pytest.raises(TypeError, match="validation_data needs a model with elbo"):
        train_model(NoElbo(), torch.rand(8, 4), 1, progress=False, validation_data=torch.rand(2, 4))
    assert _same(before, _weights(model))


def test_a_seeded_run_with_a_dataloader_leaves_the_global_rng_alone():
    """Root cause 7: a check called iter(DataLoader), which draws from the global RNG."""
    loader = DataLoader(TensorDataset(torch.rand(16, 4)), batch_size=8, shuffle=True)
    model = _tiny()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_model(model, loader, 1, seed=0, progress=False)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_says_so():
    """Root cause 3: torch's AssertionError becomes a message naming device."""
    with pytest.raises(ValueError, match=r"device='cuda'.*CUDA is not available"):
        train_model(_tiny(), torch.rand(8, 4), 1, device="cuda", progress=False)
    with pytest.raises(ValueError, match="device must name a device"):
        train_model(_tiny(), torch.rand(8, 4), 1, device="gpu", progress=False)


def test_a_model_with_nan_weights_is_refused():
    model = _tiny()
    with torch.no_grad():
        model.decoder.decoder[0].weight[0, 0] = math.nan
    with pytest.raises(ValueError, match=r"model has NaN or infinite weights.*decoder\.decoder\.0"):
        train_model(model, torch.rand(8, 4), 1, progress=False)


def test_fit_linear_vae_diverges_like_train_model(capsys):
    """Root cause 4: a huge learning_rate stops with finite weights and a message."""
    x = torch.rand(40, 4, generator=torch.Generator().manual_seed(0))
    model, history = fit_linear_vae(x, 2, n_steps=60, learning_rate=1e4)
    out = capsys.readouterr().out
    assert "diverged" in out and "learning_rate" in out
    assert len(history) < 60 and all(math.isfinite(v) for v in history)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
