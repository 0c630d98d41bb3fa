"""The driver: arguments, the plan with estimated times, and running the phases in order.

Results of phases not run are kept from an earlier ``results.json`` in ``--out-dir``
(same schema, same smoke flag), so phases can be refreshed one at a time; outputs are
rewritten after every phase, so a failing or interrupted phase loses nothing else.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import traceback
from pathlib import Path

import torch

from vi_helpers import train_model
from vi_helpers.data import dynamic_binarize

from . import idiomatic, report
from .config import (
    BEST,
    PHASES,
    QUALITY_EPOCHS,
    SCHEMA_VERSION,
    TARGET_NATS,
    VARIANTS,
    decoder_macs,
)
from .formatting import fmt_s
from .harness import Data, log, new_model, now_iso, test_nelbo
from .machine import available_cores, cpu_model, loadavg
from .phases import MODULES
from .phases.notebooks import notebook_paths, stated_run_time

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class Context:
    """What every phase reads: the arguments, the data, the device and earlier results."""

    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.device = torch.device(args.device)
        self.out_dir = Path(args.out_dir).resolve()
        self.scratch = self.out_dir / "_scratch"
        n_train, n_test = (args.smoke_train, args.smoke_test) if args.smoke else (None, None)
        self.data = Data(Path(args.data_dir).expanduser().resolve(), smoke=args.smoke,
                         n_train=n_train, n_test=n_test, device=self.device)
        self.results: dict = {}
        self.ran: set[str] = set()  # phases run by this process
        self.calibration: dict = {}

    # effective settings (smoke shrinks everything)
    @property
    def target(self) -> float:
        """105 nats; in a smoke run (tiny data) 90% of the untrained model's -ELBO."""
        if self.args.target is None:
            if self.smoke:
                model = new_model(self.args.seed, self.device)
                self.args.target = round(0.9 * test_nelbo(model, self.data.test), 2)
            else:
                self.args.target = TARGET_NATS
        return self.args.target

    @property
    def best(self) -> dict:
        best = dict(BEST)
        if self.smoke and best["n_epochs"]:
            best["n_epochs"] = 3
        return best

    @property
    def quality_epochs(self) -> int:
        return 3 if self.smoke else QUALITY_EPOCHS

    @property
    def max_epochs(self) -> int:
        return 3 if self.smoke else self.args.max_epochs


# ================================================================================ plan
def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def calibrate(ctx: Context) -> dict:
    """Seconds per epoch of the loops and batch sizes used, from a few timed steps (for
    the plan's estimates)."""
    if ctx.calibration:
        return ctx.calibration
    x = ctx.data.train
    steps = 3 if ctx.smoke else 12
    out = {}
    sizes = sorted({BEST["batch_size"], 128} | {v.get("batch_size", 128) for _, v in VARIANTS})
    amp = getattr(torch, BEST["mixed_precision"]) if BEST.get("mixed_precision") else None
    for name, bs in [("idiomatic", 128)] + [(f"vi_helpers_{b}", b) for b in sizes]:
        model = new_model(0, ctx.device)
        sub = x[: bs * steps]

        def epoch(model=model, sub=sub, bs=bs, name=name):
            if name == "idiomatic":
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                idiomatic.train_epoch(model, idiomatic.make_loader(sub, bs, seed=0), opt)
            else:
                train_model(model, sub, 1, 1e-3, batch_size=bs, transform=dynamic_binarize,
                            progress=False, mixed_precision=amp)

        epoch()  # warm-up: first calls allocate and initialize; an estimate must not scale that
        out[name] = _time(epoch) / sub.shape[0] * x.shape[0]
    out["eval_s"] = _time(lambda: test_nelbo(new_model(0, ctx.device), ctx.data.test))
    ctx.calibration = out
    return out


def _training_estimates(ctx: Context, phases: list[str]) -> dict[str, float]:
    """Estimated seconds of the phases that train, from :func:`calibrate`."""
    need_cal = any(p in phases for p in ("ttq", "ablation", "long"))
    cal = calibrate(ctx) if need_cal else {}
    ev = cal.get("eval_s", 0.3)
    s_id = cal.get("idiomatic", 6.0) + ev
    s_vi = cal.get(f"vi_helpers_{BEST['batch_size']}", 6.0) + ev
    # epochs to 105 nats: about 6 at batch 128 and Adam 1e-3 (measured), more otherwise
    e_target = 3 if ctx.smoke else 7
    reps = 1 if ctx.smoke else ctx.args.reps
    est = {"ttq": (max(ctx.quality_epochs, e_target) + (reps - 1) * e_target) * (s_vi + s_id)}
    n_timed = 1 if ctx.smoke else ctx.args.ablation_epochs
    est["ablation"] = 6 * n_timed * 2 * s_id
    for _, change in VARIANTS:
        bs = change.get("batch_size", BEST["batch_size"])
        epochs = change.get("n_epochs") or min(ctx.max_epochs, round(e_target * max(1, bs / 128)))
        est["ablation"] += epochs * (cal.get(f"vi_helpers_{bs}", 6.0) + ev)
    est["long"] = ctx.args.train_minutes * 60.0 / torch.get_num_threads() + 26 * ev
    return est


def estimate_plan(ctx: Context, phases: list[str]) -> dict[str, float]:
    """Estimated seconds per phase, from a few timed training steps and the sgemm peak."""
    est = {"env": 0.1, "peak": 2.0 if ctx.smoke else 12.0}
    est.update(_training_estimates(ctx, phases))
    est["overhead"] = 3.0 if ctx.smoke else 30.0
    peak = (ctx.results.get("peak") or {}).get("peak_gflops") or 100.0
    n_test = ctx.args.smoke_test if ctx.smoke else 10000
    flops = 2.0 * decoder_macs() * ctx.args.iwae_k * n_test
    # decoder matmuls at ~60% of the peak, plus ~30% for the elementwise log-likelihoods
    est["iwae"] = flops / (0.6 * peak * 1e9) * 1.3
    est["ppca"] = 2.0 if ctx.smoke else 15.0
    est["widgets"] = 5.0 if ctx.smoke else 30.0
    per = [stated_run_time(p) or 25.0 for p in notebook_paths()]
    n_settings = len([t for t in ctx.args.notebook_threads.split(",") if t])
    est["notebooks"] = n_settings * sum(sec + 5.0 for sec in per)  # + a kernel start each
    return {p: est[p] for p in phases}


# =========================================================================== arguments
def _parser() -> argparse.ArgumentParser:
    from . import __doc__ as package_doc

    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description=package_doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"),
        help="folder with the four MNIST IDX files (.gz or raw)")
    add("--out-dir", default=str(HERE), help="where results.{json,md,png} go (default: benchmarks/)")
    add("--only", action="append", default=None, metavar="PHASE",
        help=f"run only these phases (repeat or comma-separate): {', '.join(PHASES)}")
    add("--skip", action="append", default=None, metavar="PHASE", help="run all phases but these")
    add("--smoke", action="store_true",
        help="tiny data and budgets, k=10, no notebooks (for the tests, ~20 s)")
    add("--device", default="cpu",
        help="where the models train and are evaluated, e.g. cuda (data moved there once)")
    add("--iwae-k", type=int, default=None,
        help="importance samples per image for the NLL (default 5000; smoke 10)")
    add("--iwae-chunk", type=int, default=50, help="images per call of log_likelihood_is")
    add("--iwae-chunk-size", type=int, default=200,
        help="importance samples per inner step of log_likelihood_is (its chunk_size)")
    add("--train-minutes", type=float, default=None,
        help="CPU-minutes of training for the IWAE model (default 30; smoke 0.05)")
    add("--long-lr", type=float, default=1e-3,
        help="initial learning rate of the long run's cosine schedule")
    add("--long-batch", type=int, default=128, help="batch size of the long run")
    add("--long-precision", choices=["bfloat16", "float32"], default="bfloat16",
        help="autocast dtype of the long run's forward pass (float32: none)")
    add("--target", type=float, default=None,
        help="test -ELBO target in nats (default 105; smoke: 0.9 x the initial)")
    add("--reps", type=int, default=2, help="A,B repetitions in the ttq phase")
    add("--max-epochs", type=int, default=15, help="epoch cap for runs that stop at the target")
    add("--seed", type=int, default=0)
    add("--ablation-epochs", type=int, default=2,
        help="epochs timed per loop choice (each paired with a tutorial epoch)")
    add("--threads", type=int, default=None,
        help="torch threads (default: all available cores, whatever OMP_NUM_THREADS "
             "says, so that `make bench` and a direct run measure the same thing)")
    add("--ppca-latent", type=lambda v: [int(t) for t in v.split(",")],
        default=[2, 5, 10], help="latent sizes of the pPCA check (comma-separated)")
    add("--notebook-threads", default="1,2", help="OMP_NUM_THREADS settings for the notebooks phase")
    add("--notebook-timeout", type=int, default=600)
    add("--smoke-train", type=int, default=512)
    add("--smoke-test", type=int, default=256)
    return p


def _names(items) -> list[str]:
    return [s.strip() for item in items or [] for s in item.split(",") if s.strip()]


def parse_args(argv=None):
    p = _parser()
    args = p.parse_args(argv)
    if args.iwae_k is None:
        args.iwae_k = 10 if args.smoke else 5000
    if args.train_minutes is None:
        args.train_minutes = 0.05 if args.smoke else 30.0
    selected, skipped = _names(args.only), _names(args.skip)
    for name in selected + skipped:
        if name not in PHASES:
            p.error(f"unknown phase {name!r}; choose from {', '.join(PHASES)}")
    if not selected:
        selected = [ph for ph in PHASES if not (args.smoke and ph == "notebooks")]
    args.phases = [ph for ph in PHASES if ph in selected and ph not in skipped]
    return args


# ============================================================================== running
def _previous(json_path: Path, smoke: bool) -> dict:
    """The earlier ``results.json`` of the same schema and kind (smoke or not), or ``{}``."""
    if not json_path.is_file():
        return {}
    try:
        previous = json.loads(json_path.read_text())
    except json.JSONDecodeError:
        return {}
    if previous.get("schema") != SCHEMA_VERSION or bool(previous.get("smoke")) != smoke:
        return {}
    return previous


def _phases_to_run(args) -> list[str]:
    phases = list(args.phases)
    if "env" not in phases:
        phases.insert(0, "env")
    # the matmul peak is measured in the same run as anything reported against it
    if any(p in phases for p in ("ttq", "ablation", "iwae")) and "peak" not in phases:
        phases.insert(1, "peak")
    return phases


def run_phase(ctx: Context, name: str, command: str, estimate: float | None) -> bool:
    """Run phase ``name`` into ``ctx.results`` with its ``_meta``; ``False`` if it failed."""
    log(f"== {name}" + (f" (estimated {fmt_s(estimate)})" if estimate is not None else ""))
    load_before = loadavg()
    t = time.perf_counter()
    try:
        result = MODULES[name].run(ctx)
        ok = True
        ctx.ran.add(name)
    except Exception as err:  # a failing phase must not lose the others' results
        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {err}"}
        ok = False
    seconds = time.perf_counter() - t
    result = dict(result)
    result["_meta"] = {"date": now_iso(), "command": command, "seconds": round(seconds, 2),
                       "estimated_seconds": round(estimate, 1) if estimate else None,
                       "threads": torch.get_num_threads(), "loadavg_before": load_before,
                       "loadavg_after": loadavg()}
    ctx.results[name] = result
    log(f"   {name} took {fmt_s(seconds)}" + ("" if ok else " -- FAILED"))
    return ok


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads or available_cores())
    ctx = Context(args)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    previous = _previous(ctx.out_dir / "results.json", args.smoke)
    notes = previous.get("notes")
    command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    started = time.perf_counter()
    phases = _phases_to_run(args)
    ctx.results.update(previous.get("phases", {}))
    log(f"vi_helpers benchmark -- {now_iso()} -- {cpu_model()}, {available_cores()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {ctx.device}, "
        f"load {loadavg()}")
    log(f"command: {command}")
    # env and peak first, then the plan (its estimates use the measured peak)
    for name in ("env", "peak"):
        if name in phases:
            run_phase(ctx, name, command, None)
    rest = [p for p in phases if p not in ("env", "peak")]
    plan = estimate_plan(ctx, rest)
    log(f"plan ({fmt_s(sum(plan.values()))} estimated):")
    for name, sec in plan.items():
        log(f"  {name:10s} ~{fmt_s(sec)}")
    ctx.results["_plan"] = {k: round(v, 1) for k, v in plan.items()}
    failures = [name for name in rest if not _run_and_write(ctx, name, command, plan, notes)]
    _write(ctx, command, notes)
    log(f"done in {fmt_s(time.perf_counter() - started)}; results in {ctx.out_dir}")
    if failures:
        log(f"FAILED phases: {', '.join(failures)}")
    return 1 if failures else 0


def _run_and_write(ctx: Context, name: str, command: str, plan: dict, notes) -> bool:
    ok = run_phase(ctx, name, command, plan.get(name))
    _write(ctx, command, notes)
    return ok


def _write(ctx: Context, command: str, notes) -> None:
    doc = report.document(ctx.results, smoke=ctx.smoke, command=command, notes=notes)
    report.write_outputs(doc, ctx.out_dir)
