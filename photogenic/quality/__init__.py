"""Data-quality gates: every stage's output is validated by a Great Expectations suite before
the next stage runs. See ``gate.run_gate`` and, for adding a suite, ``suites``."""

import logging

# GE logs at INFO from import onwards (hundreds of lines about its docs decorators), and the CLI
# logs at INFO: keep GE at WARNING unless the user chose a level for it.
if logging.getLogger("great_expectations").level == logging.NOTSET:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

from photogenic.errors import QualityGateError  # noqa: E402
from photogenic.quality.gate import DatasetStats, GateResult, run_gate  # noqa: E402
from photogenic.quality.suites import (  # noqa: E402
    GateParams,
    GateSuites,
    IngestGateParams,
    get_suite_kind,
    known_kinds,
    register_suite,
)

__all__ = [
    "DatasetStats",
    "GateParams",
    "GateResult",
    "GateSuites",
    "IngestGateParams",
    "QualityGateError",
    "get_suite_kind",
    "known_kinds",
    "register_suite",
    "run_gate",
]
