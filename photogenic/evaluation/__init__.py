"""Evaluation: pairwise win rates of a candidate model over a baseline, by automated judges and
human raters, with confidence intervals; the report; the registry promotion gate.

Entry points: ``evaluate.run_evaluation`` (the ``evaluate`` stage), ``human.export_human`` /
``human.record_human_results``, ``promotion.promote`` (the ``promote`` stage).
"""
