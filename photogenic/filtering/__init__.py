"""The auto-filter: a cascade of scorers, cheap ones first, each run only on what survived the
ones before it, every score and every rejection reason recorded per sample.

``scorer`` defines what a scorer is; ``scorers`` holds the concrete ones; ``cascade`` runs
them over a dataset's manifest, batch-wise and streaming, with pixel work in worker processes.
"""
