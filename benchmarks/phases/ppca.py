"""``ppca``: the linear VAE against the exact pPCA log-likelihood on the 8x8 digits.

The linear VAE's ELBO optimum is the pPCA maximum likelihood (Lucas et al. 2019), so
the gaps are optimization gaps; both log-likelihoods are exact (Gaussian marginals),
computed in float64, in nats per image, on all 1797 digits.
"""

from __future__ import annotations

import time

import torch

from vi_helpers.data import load_digits
from vi_helpers.exact_models import ProbabilisticPCA
from vi_helpers.train import fit_linear_vae

from ..harness import log


def _row(x: torch.Tensor, latent: int, n_steps: int | None) -> dict:
    x64 = x.double()
    ppca = ProbabilisticPCA(latent).fit(x)
    exact = ppca.max_log_likelihood()
    t = time.perf_counter()
    out = fit_linear_vae(x, latent, **({"n_steps": n_steps} if n_steps else {}))
    fit_s = time.perf_counter() - t
    model = (out[0] if isinstance(out, tuple) else out).double().eval()
    with torch.no_grad():
        vae_ll = float(model.exact_log_likelihood(x64).mean())
        vae_elbo = float(model.analytic_elbo(x64).mean())
        ppca_ll = float(ppca.log_likelihood(x64).mean())
    log(f"  L={latent}: pPCA {exact:.3f}, linear VAE log-lik {vae_ll:.3f} "
        f"(gap {exact - vae_ll:.4f}), ELBO {vae_elbo:.3f} (gap {exact - vae_elbo:.4f}) "
        f"nats/image, fit {fit_s:.1f} s")
    return {
        "latent_size": latent,
        "ppca_loglik": exact,
        "ppca_loglik_rows": ppca_ll,
        "linear_vae_loglik": vae_ll,
        "linear_vae_elbo": vae_elbo,
        "gap_loglik": exact - vae_ll,
        "gap_elbo": exact - vae_elbo,
        "fit_seconds": fit_s,
        "n_steps": n_steps or "default",
    }


def run(ctx) -> dict:
    x, _ = load_digits(split="all")
    n_steps = 100 if ctx.smoke else None
    rows = [_row(x, latent, n_steps) for latent in ctx.args.ppca_latent]
    return {
        "data": f"sklearn digits, all {x.shape[0]} images, D={x.shape[1]}, pixels / 16",
        "rows": rows,
        "gap_loglik": max(r["gap_loglik"] for r in rows),
        "gap_elbo": max(r["gap_elbo"] for r in rows),
    }


def to_markdown(result: dict) -> list[str]:
    out = ["## Exactness: linear VAE vs pPCA", "",
           f"{result['data']}. Exact log-likelihoods (Gaussian marginals, float64), nats "
           "per image; gap = pPCA maximum - linear VAE (>= 0 up to rounding).", "",
           "| L | pPCA max log-lik. | linear VAE log-lik. | gap | linear VAE ELBO | "
           "ELBO gap | fit |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        out.append(f"| {r['latent_size']} | {r['ppca_loglik']:.3f} | "
                   f"{r['linear_vae_loglik']:.3f} | {r['gap_loglik']:.4f} | "
                   f"{r['linear_vae_elbo']:.3f} | {r['gap_elbo']:.4f} | "
                   f"{r['fit_seconds']:.1f} s |")
    out.append("")
    return out
