"""The data-quality gate between pipeline stages: validate a dataset with its kind's Great
Expectations suites, write GE's Data Docs beside it, and say in plain words what failed.

Each run builds a fresh ephemeral GE context (in-memory stores, no ``gx/`` project folder, no
network) with one pandas datasource and two dataframe assets: the manifest rows, and a one-row
table of dataset statistics (the quarantine share is a property of the dataset, so it is
validated as such, by a real expectation that shows up in the results and the Data Docs like the
others). Setting up the context costs milliseconds; importing GE itself costs seconds once per
process, which is why the runners import this package lazily.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.datasource.fluent import PandasDatasource
from great_expectations.expectations import Expectation

from photogenic.errors import QualityGateError
from photogenic.quality.docs import index_path, local_site, site_config
from photogenic.quality.report import expectation_rows, failure_lines
from photogenic.quality.suites import GateParams, get_suite_kind
from photogenic.quality.summary import SUMMARY_NAME, render_summary, validation_pages

#: the column whose values identify an offending row in failure messages and Data Docs
ID_COLUMN = "sample_id"
#: how many offending values GE keeps per expectation (Data Docs show them; messages show fewer)
_PARTIAL_UNEXPECTED = 20
#: GE keeps "the current context" in a module global that validation runs read; one gate at a
#: time per process keeps two threads' gates from validating against each other's stores
_GX_LOCK = threading.Lock()


@dataclass
class DatasetStats:
    """The dataset-level numbers the ``dataset`` suite checks."""

    rows: int
    quarantine_rows: int
    quarantine_share: float

    @classmethod
    def of(cls, rows: int, quarantine_rows: int) -> DatasetStats:
        if quarantine_rows < 0:
            raise ValueError(f"quarantine_rows must be >= 0, got {quarantine_rows}")
        total = rows + quarantine_rows
        return cls(rows, quarantine_rows, quarantine_rows / total if total else 0.0)


@dataclass
class GateResult:
    """What a gate run found; ``to_dict()`` is what the runners record as run metadata."""

    kind: str
    success: bool
    #: one line per failed expectation: type, column, what it expected, what it observed
    failed: list[str]
    #: expectation counts over both suites: evaluated, successful, unsuccessful
    statistics: dict[str, int]
    dataset: DatasetStats
    #: the gate's self-contained summary page (gate.html, linking to GE's Data Docs beside it):
    #: a path, or a URL for remote docs; None when no docs were written
    docs_index: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, for run metadata (ZenML, MLflow)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """The inverse of ``to_dict``: lets a runner that only sees a step's metadata (an
        orchestrator that wraps step exceptions) re-raise the gate's own message."""
        return cls(**{**data, "dataset": DatasetStats(**data["dataset"])})

    def message(self) -> str:
        """The one-paragraph explanation of a failed gate."""
        stats = self.dataset
        where = f"The Data Docs report is at {self.docs_index}." if self.docs_index else "No Data Docs were written."
        return (
            f"The {self.kind} dataset failed its quality gate: {len(self.failed)} of "
            f"{self.statistics['evaluated']} expectations were not met: {'; '.join(self.failed)}. "
            f"The dataset has {stats.rows} rows and {stats.quarantine_rows} quarantined "
            f"({stats.quarantine_share:.1%} of the input). Stages downstream must not use it until the data "
            f"or the gate's thresholds are fixed. {where}"
        )

    def raise_for_failure(self) -> None:
        if not self.success:
            raise QualityGateError(self.message())


def run_gate(
    kind: str,
    manifest: pd.DataFrame,
    *,
    quarantine_rows: int,
    params: GateParams | Mapping[str, Any],
    docs_dir: str | os.PathLike | None,
) -> GateResult:
    """Validate ``manifest`` (and the dataset's statistics) with the suites of ``kind``.

    Writes GE Data Docs into ``docs_dir`` (passing or failing) unless it is None. Never raises
    because the data is bad: the result says so; call ``raise_for_failure()`` to stop a pipeline.
    """
    suite_kind = get_suite_kind(kind)
    parsed = suite_kind.parse_params(params)
    suites = suite_kind.build(parsed)
    dataset = DatasetStats.of(len(manifest), quarantine_rows)
    with _GX_LOCK, local_site(docs_dir) as site_dir:
        context = _ephemeral_context(site_dir)
        datasource = context.data_sources.add_pandas(kind)
        run_id = RunIdentifier(run_name=f"{kind}-gate", run_time=datetime.datetime.now(datetime.timezone.utc))
        results = [
            _validate(context, datasource, kind, "manifest", manifest, suites.manifest, run_id),
            _validate(context, datasource, f"{kind}.dataset", "dataset", pd.DataFrame([asdict(dataset)]),
                      suites.dataset, run_id),
        ]
        success = all(result.success for result in results)
        if site_dir is not None:
            context.build_data_docs()
            summary = render_summary(
                kind, success,
                {f"{kind} manifest": expectation_rows(results[0]), f"{kind} dataset": expectation_rows(results[1])},
                asdict(dataset), validation_pages(site_dir),
            )
            with open(os.path.join(site_dir, SUMMARY_NAME), "w", encoding="utf-8") as handle:
                handle.write(summary)
    return GateResult(
        kind=kind,
        success=success,
        failed=[line for result in results for line in failure_lines(result)],
        statistics=_counts(results),
        dataset=dataset,
        docs_index=index_path(docs_dir, SUMMARY_NAME) if docs_dir is not None else None,
        params=parsed.model_dump(mode="json"),
    )


def _ephemeral_context(site_dir: str | None) -> AbstractDataContext:
    """In-memory stores, a Data Docs site only where docs are wanted, no progress bars.
    GE 1.24 has no usage statistics left to send; analytics are still pinned off in case a
    later 1.x brings them back."""
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=site_config(site_dir) if site_dir is not None else {},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _validate(
    context: AbstractDataContext,
    datasource: PandasDatasource,
    suite_name: str,
    asset_name: str,
    frame: pd.DataFrame,
    expectations: list[Expectation],
    run_id: RunIdentifier,
) -> ExpectationSuiteValidationResult:
    """Run one suite on one dataframe through a ValidationDefinition, so the result lands in the
    context's validation results store, where the Data Docs builder finds it."""
    batch = datasource.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    )
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": _PARTIAL_UNEXPECTED}
    if ID_COLUMN in frame.columns:
        result_format["unexpected_index_column_names"] = [ID_COLUMN]
    return definition.run(batch_parameters={"dataframe": frame}, result_format=result_format, run_id=run_id)


def _counts(results: list[ExpectationSuiteValidationResult]) -> dict[str, int]:
    evaluated = sum(result.statistics["evaluated_expectations"] for result in results)
    successful = sum(result.statistics["successful_expectations"] for result in results)
    return {"evaluated": evaluated, "successful": successful, "unsuccessful": evaluated - successful}
