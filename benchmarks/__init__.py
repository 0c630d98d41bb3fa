"""Benchmark suite of the course: speed, quality against the literature, exactness, run time.

usage (from the repository root)::

    python -m benchmarks --data-dir ../shared/data/mnist            # everything (< 45 min, 2 cores)
    python -m benchmarks --data-dir ../shared/data/mnist --only ttq  # one phase (repeatable)
    python -m benchmarks --data-dir ../shared/data/mnist --smoke --out-dir /tmp/b  # ~20 s
    python -m benchmarks --only ttq --device cuda --reps 1           # time to quality on a GPU

Phases (``--only`` selects; results of phases not run are kept from an earlier
``results.json`` in ``--out-dir``, so phases can be refreshed one at a time):

``env``        machine, torch, threads, date, command (always recorded).
``peak``       sgemm peak: ``torch.mm`` on the model's matrix shapes and a large square
               (``torch.utils.benchmark.Timer``), best of several.
``ttq``        time to quality: seconds of training until the test -ELBO <= 105 nats, vi_helpers'
               trainer (best settings) against the tutorial loop of ``benchmarks/idiomatic.py``, run
               alternately A, B, A, B in this process; s/epoch and the fraction of the matmul bound;
               the test -ELBO after 10 epochs (anchor 102.6 nats).
``ablation``   each training choice's effect on time-to-105.
``overhead``   what ``vi_helpers.train_model`` spends per step beyond a lean loop, and on what.
``long``       the same model trained for ``--train-minutes`` CPU-minutes (cosine schedule).
``iwae``       IWAE ``--iwae-k`` NLL on the full test set and active units of the ``long`` model.
``ppca``       linear VAE against the exact pPCA log-likelihood on the 8x8 digits.
``widgets``    in-kernel widget update latency (``benchmarks/widget_latency.py``).
``notebooks``  seconds per notebook and in total with OMP_NUM_THREADS=1 and =2 (temp copies).

Data protocol: MNIST images scaled to [0, 1]; training batches are binarized dynamically
(a fresh Bernoulli draw every time a batch is used); the test set is binarized once with
``torch.Generator().manual_seed(0)``. "Test -ELBO" is the single-sample ELBO with a fixed
generator (seed 0) on that static test set, evaluated after every epoch with the training
clock paused.

Outputs in ``--out-dir`` (default ``benchmarks/``): ``results.json``, ``results.md``,
``results.png``; the long-trained model is kept in ``<out-dir>/_scratch/`` (git-ignored).

Layout: ``config`` (model, targets, anchors, goals, settings), ``machine``, ``harness``
(data, clocks, curves, the two training loops), ``idiomatic`` (the tutorial loop),
``phases/<phase>.py`` (``run(ctx)`` and ``to_markdown(result)`` each), ``report`` and
``figure`` (results.md/json/png), ``driver`` (arguments, plan, running the phases).
Importing the package has no side effects.
"""
