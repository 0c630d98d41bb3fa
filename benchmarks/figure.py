"""``results.png``: the time-to-quality curves and the long run's curve."""

from __future__ import annotations

from pathlib import Path

from .config import ANCHORS, GOALS, TARGET_NATS


def _ttq_panel(ax, ttq: dict) -> None:
    colors = {"vi_helpers": "tab:blue", "idiomatic": "tab:orange"}
    labels = {"vi_helpers": "vi_helpers.train_model (best settings)",
              "idiomatic": "idiomatic loop (DataLoader, batch 128)"}
    for name, runs in ttq["runs"].items():
        for i, run in enumerate(runs):
            pts = run["points"]
            ax.plot([p["train_s"] for p in pts], [p["test_nelbo"] for p in pts], "o-",
                    color=colors[name], alpha=1.0 if i == 0 else 0.45, ms=3,
                    label=labels[name] if i == 0 else None)
    target = ttq.get("target_nats", TARGET_NATS)
    ax.axhline(target, color="k", ls="--", lw=1, label=f"{target:g} nats")
    vals = [p["test_nelbo"] for runs in ttq["runs"].values() for r in runs for p in r["points"]]
    if vals:
        ax.set_ylim(min(vals) - 2, min(max(vals), target + 40) + 2)
    ax.set_xlabel("training wall-clock seconds (evaluation excluded)")
    ax.set_ylabel("test -ELBO (nats)")
    ratio = ttq.get("ratio")
    ax.set_title("Time to quality" + (f": ratio {ratio:.2f}" if ratio else ""))
    ax.legend(fontsize=8)


def _long_panel(ax, longr: dict, iw: dict) -> None:
    pts = longr["run"]["points"]
    ax.plot([p["train_cpu_s"] / 60 for p in pts], [p["test_nelbo"] for p in pts], "o-", ms=3,
            color="tab:blue", label="test -ELBO")
    if iw.get("nll") is not None:
        ax.axhline(iw["nll"], color="tab:green", ls="-", lw=1,
                   label=f"IWAE NLL k={iw['k']}: {iw['nll']:.2f}")
    ax.axhline(ANCHORS["iwae_nll_burda"], color="gray", ls=":", lw=1,
               label=f"Burda et al. NLL {ANCHORS['iwae_nll_burda']}")
    ax.axhline(GOALS["iwae_nll"], color="k", ls="--", lw=1, label=f"goal {GOALS['iwae_nll']:g}")
    vals = [p["test_nelbo"] for p in pts]
    ax.set_ylim(ANCHORS["iwae_nll_burda"] - 2, min(max(vals), 120) + 2)
    ax.set_xlabel("training CPU-minutes")
    ax.set_ylabel("nats")
    ax.set_title("Long training")
    ax.legend(fontsize=8)


def plot_results(doc: dict, path: Path) -> None:
    """Draw the figure of a ``results.json`` document into ``path`` (nothing without ttq)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ph = doc["phases"]
    ttq, longr = ph.get("ttq"), ph.get("long")
    if not ttq or "runs" not in ttq:
        return
    ncols = 2 if longr and "run" in longr else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    _ttq_panel(axes[0, 0], ttq)
    if ncols == 2:
        _long_panel(axes[0, 1], longr, ph.get("iwae") or {})
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
