"""Benchmarks of the cloud shunt on the all-in-one cluster.

Not part of the test run (no timing thresholds in tests: the targets live
here). Run them all with::

    python -m tests.bench.run            # about 10 minutes
    python -m tests.bench.run --quick    # a smoke run, about 4 minutes

See :mod:`tests.bench.run` for the figures, the options and the outputs
(a table, ``tests/bench/results/latest.json`` and a PNG chart).

A separate benchmark script ``tests/bench/bench_<name>.py`` of another
feature (the runner knows ``listing`` and ``restore``) is run as a
subprocess; to have its figures in the table it accepts ``--json PATH``
and writes ``{"rows": [row, ...]}`` there, each row a dict with the keys
of :class:`tests.bench.common.Row` (at least ``key``, ``title``,
``measured``, ``limit``, ``unit``, ``target`` and ``check``; ``ratio``,
``value``, ``value_unit``, ``noisy`` and ``note`` optional), and
``--quick`` if it has a shorter mode. Without ``--json`` the runner reads
what it can from the script's printed table.
"""
