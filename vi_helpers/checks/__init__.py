r"""Exercise checks: run a student's function on several cases and explain what is wrong.

Every notebook exercise that asks for code is followed by a cell that calls one
check from this package with the student's function, e.g.::

    from vi_helpers import checks
    checks.check_kl_diag_gaussian(kl_diag_gaussian)

A check

* runs the function on several cases, including edge cases (zero mean and unit
  variance, batch shapes, large magnitudes, ``K = 1``, nearly parallel vectors ...),
  against a reference computed *independently* in float64 (``torch.distributions``,
  closed forms, exact posteriors of :class:`~vi_helpers.models.ConjugateGaussianModel`);
* prints one line per case, ``✓`` or ``✗`` with the rounded value (got and expected
  on a failure), then targeted hints, then a summary line ``All N checks passed.``
  or ``k of N checks passed.``;
* diagnoses typical mistakes by comparing a wrong answer with precomputed answers
  of *mutants* (a missing ½, a wrong sign, a mean where a sum belongs, a standard
  deviation where a variance belongs, a forgotten KL term, a forgotten
  :math:`-\log K`, an unstable log-sum-exp, lerp instead of slerp ...) and prints
  the matching hint. It never prints the solution code or its full formula;
* prints ``Not attempted yet: ...`` (no traceback) when the function still
  raises ``NotImplementedError``, and a friendly one-line message (exception type
  and message) when it raises anything else or returns the wrong type or shape;
* returns a :class:`CheckResult` (truthy only when every case passed).

**How notebooks call a check.** As the last statement of its cell, without
assigning the result: ``checks.check_kl_diag_gaussian(kl_diag_gaussian)``. The
report is printed while the check runs; :class:`CheckResult` deliberately
displays nothing in IPython/Jupyter (``_ipython_display_``), so the cell shows
no ``Out[...]`` line and a trailing ``;`` is harmless but not needed. Its
``repr`` (for scripts and tests) is short and deterministic, e.g.
``CheckResult('kl_diag_gaussian', passed, 6/6)``.

Everything printed is deterministic (fixed seeds, float64 references, values
rounded to 4 decimals), so nbval can compare the output of a solved notebook.

Layout: one module per notebook, named after the notebook file
(``07_training_pathologies.ipynb`` -> ``checks/training_pathologies.py``), over
the runner in ``checks/_runner.py``. A new check goes into its notebook's module
and into that module's ``__all__``; this package re-exports it.
"""

from ._runner import NOT_ATTEMPTED_MESSAGE, STATUSES, CheckResult
from .elbo import check_mc_elbo
from .evaluating_vaes import check_effective_sample_size, check_iwae_bound
from .free_energy import check_efe, check_free_energy_conjugate, check_predicted_rate
from .gradient_estimators import check_reparameterize, check_score_function_grad_mu
from .kl_divergence import check_kl_diag_gaussian
from .latent_space import check_slerp
from .mean_field_cavi import check_cavi_update_mu
from .training_pathologies import check_active_units, check_linear_warmup
from .vae import check_vae_loss_bernoulli

__all__ = [
    "CheckResult",
    "STATUSES",
    "NOT_ATTEMPTED_MESSAGE",
    "check_kl_diag_gaussian",
    "check_mc_elbo",
    "check_cavi_update_mu",
    "check_score_function_grad_mu",
    "check_reparameterize",
    "check_vae_loss_bernoulli",
    "check_slerp",
    "check_active_units",
    "check_linear_warmup",
    "check_iwae_bound",
    "check_effective_sample_size",
    "check_free_energy_conjugate",
    "check_efe",
    "check_predicted_rate",
]
