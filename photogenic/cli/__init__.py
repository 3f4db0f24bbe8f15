"""The ``photogenic`` command line: one module per command group (``recipe``: sample-pool, run,
step, config, retrain; ``data``; ``curation``; ``evaluate``; ``kfp``; ``lineage``;
``dashboards``), the options they share (``options``), and the root app (``app``)."""

from photogenic.cli.app import app, main

__all__ = ["app", "main"]
