"""The importance-weighted autoencoder: log-weights against torch.distributions, the
training loss against the IWAE bound, and the train_model contract."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from vi_helpers import evaluate
from vi_helpers.iwae import ImportanceWeightedAutoencoder, iwae_log_weights
from vi_helpers.train import train_model

D, H, L = 6, 8, 2


def _model(k=4, seed=0):
    torch.manual_seed(seed)
    return ImportanceWeightedAutoencoder(D, H, L, k=k)


def _data(n=10, seed=1):
    return torch.rand(n, D, generator=torch.Generator().manual_seed(seed)).round()


def test_log_weights_match_torch_distributions():
    model, x = _model(), _data()
    log_w, log_lik, mu, log_var = iwae_log_weights(model, x, 7, generator=torch.Generator().manual_seed(3))
    eps = torch.randn((7, *mu.shape), generator=torch.Generator().manual_seed(3))
    std = log_var.mul(0.5).exp()
    z = mu + std * eps
    logits = model.decoder(z)
    ref_lik = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(-1)
    ref = ref_lik + Normal(0.0, 1.0).log_prob(z).sum(-1) - Normal(mu, std).log_prob(z).sum(-1)
    assert log_w.shape == (7, len(x)) and log_lik.shape == (7, len(x))
    torch.testing.assert_close(log_lik, ref_lik, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(log_w, ref, atol=1e-4, rtol=1e-5)


def test_training_loss_is_the_negative_iwae_bound_and_has_the_contract_terms():
    model, x = _model(k=5), _data()
    torch.manual_seed(11)
    loss, terms = model.training_loss(x)
    log_w, log_lik, mu, log_var = iwae_log_weights(model, x, 5, generator=torch.Generator().manual_seed(11))
    expected = -(torch.logsumexp(log_w, 0) - math.log(5)).mean()
    torch.testing.assert_close(loss, expected)
    assert set(terms) == {"recon", "kl", "log_lik"} and all(t.dim() == 0 for t in terms.values())
    torch.testing.assert_close(terms["log_lik"], log_lik.mean())
    torch.testing.assert_close(terms["recon"], -log_lik.mean())
    kl_ref = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(-1).mean()
    torch.testing.assert_close(terms["kl"], kl_ref)
    assert loss.requires_grad and not terms["kl"].requires_grad


def test_k1_loss_is_a_single_sample_elbo_and_bound_tightens_with_k():
    model, x = _model(), _data(200)
    with torch.no_grad():
        log_w1, *_ = iwae_log_weights(model, x, 1, generator=torch.Generator().manual_seed(0))
        elbo = model.elbo(x, n_samples=2000, generator=torch.Generator().manual_seed(1)).mean()
        bounds = {}
        for k in (1, 10, 100):
            log_w, *_ = iwae_log_weights(model, x, k, generator=torch.Generator().manual_seed(k))
            bounds[k] = float((torch.logsumexp(log_w, 0) - math.log(k)).mean())
    # K = 1: an unbiased single-sample estimate of the ELBO (mean over 200 examples)
    assert abs(float(log_w1.mean()) - float(elbo)) < 0.3
    assert bounds[1] < bounds[10] < bounds[100]
    exact = evaluate.log_likelihood_is(model, x, k=5000, generator=torch.Generator().manual_seed(9))
    assert bounds[100] <= float(exact.mean()) + 0.01


def test_train_model_trains_an_iwae_and_evaluation_works():
    model, x = _model(k=3), _data(64)
    history = train_model(model, x, n_epochs=3, learning_rate=1e-2, batch_size=32, seed=0,
                          progress=False, validation_data=x[:16])
    assert history.status == "completed" and len(history) == 3
    assert len(history.elbo) == 3 and len(history.val_elbo) == 3
    # the loss is -L_K, an upper bound... on -log p; L_K >= ELBO in expectation
    assert all(math.isfinite(v) for v in history)
    assert evaluate.log_likelihood_is(model, x, k=50).shape == (64,)
    assert model.config["k"] == 3 and "beta" not in model.config


def test_training_loss_rejects_beta_and_free_bits():
    model, x = _model(), _data()
    with pytest.raises(ValueError, match="do not apply to the IWAE bound"):
        model.training_loss(x, beta=0.5)
    with pytest.raises(ValueError, match="do not apply"):
        train_model(model, x, n_epochs=1, free_bits=0.1, progress=False)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="k"):
        ImportanceWeightedAutoencoder(D, H, L, k=0)
    model = _model()
    with pytest.raises(ValueError, match="x"):
        iwae_log_weights(model, torch.zeros(3, D + 1), 2)
    with pytest.raises(ValueError, match="k"):
        iwae_log_weights(model, _data(), 0)
