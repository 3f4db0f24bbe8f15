"""The expectation suites, one per dataset kind, kept in code next to the data they describe.

A kind registers a builder that turns its parameters (a pydantic model, filled from the run
config) into two lists of Great Expectations expectations: one checked on the manifest rows, one
on the dataset-level statistics the gate computes (row and quarantine counts, quarantine share).
A later stage adds its suite the same way::

    class FilterGateParams(GateParams):
        min_kept: int = 1

    @register_suite("filter", FilterGateParams)
    def filter_suites(params: FilterGateParams) -> GateSuites:
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column
from pydantic import BaseModel, ConfigDict, Field

from photogenic.dataset.schema import CAPTION_STATUSES, CAPTION_USABLE, KNOWN_FORMATS

#: sample_id is the sha256 hex digest of the original image bytes
SHA256_HEX = r"^[0-9a-f]{64}$"


class GateParams(BaseModel):
    """Base of every suite's parameters: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestGateParams(GateParams):
    max_caption_chars: int = Field(1000, ge=1, description="Ingest truncates longer captions to this length.")
    max_quarantine_share: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest share of input rows that may be quarantined."
    )
    min_rows: int = Field(1, ge=0, description="Fewest rows the manifest may have.")


@dataclass(frozen=True)
class GateSuites:
    """What one kind's gate checks.

    ``manifest`` expectations run on the manifest rows; ``dataset`` expectations run on a one-row
    table with the columns ``rows``, ``quarantine_rows`` and ``quarantine_share``, because GE
    validates tables and the quarantine share is a property of the dataset, not of any row.
    """

    manifest: list[gxe.Expectation]
    dataset: list[gxe.Expectation]


P = TypeVar("P", bound=GateParams)
SuiteBuilder = Callable[[Any], GateSuites]


@dataclass(frozen=True)
class SuiteKind:
    """A registered dataset kind: its params model and the function that builds its suites."""

    name: str
    params: type[GateParams]
    build: SuiteBuilder

    def parse_params(self, params: GateParams | Mapping[str, Any]) -> GateParams:
        """Accept the kind's own params model or a plain dict (what the runners pass)."""
        return params if isinstance(params, self.params) else self.params.model_validate(params)


_KINDS: dict[str, SuiteKind] = {}


def register_suite(kind: str, params: type[P]) -> Callable[[Callable[[P], GateSuites]], Callable[[P], GateSuites]]:
    """Decorator: register the decorated builder as the suites of dataset kind ``kind``,
    parameterised by the pydantic model ``params``."""

    def register(builder: Callable[[P], GateSuites]) -> Callable[[P], GateSuites]:
        if kind in _KINDS:
            raise ValueError(f"A quality gate suite for kind {kind!r} is already registered.")
        _KINDS[kind] = SuiteKind(kind, params, builder)
        return builder

    return register


def known_kinds() -> list[str]:
    return sorted(_KINDS)


def get_suite_kind(kind: str) -> SuiteKind:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(
            f"There is no quality gate suite for dataset kind {kind!r}; the known kinds are: "
            f"{', '.join(known_kinds())}."
        ) from None


#: ingest columns that every row must have
_INGEST_REQUIRED = ("sample_id", "shard", "offset", "length", "width", "height", "format", "caption_status")


@register_suite("ingest", IngestGateParams)
def ingest_suites(params: IngestGateParams) -> GateSuites:
    """The ingested dataset: identity, location in the store, decoded image facts, and captions
    whose nullness agrees with caption_status (non-null exactly for the usable statuses)."""
    status = Column("caption_status")
    manifest = [
        gxe.ExpectTableRowCountToBeBetween(min_value=params.min_rows),
        *(gxe.ExpectColumnValuesToNotBeNull(column=column) for column in _INGEST_REQUIRED),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="sample_id", regex=SHA256_HEX),
        gxe.ExpectColumnValuesToBeBetween(column="offset", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="length", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="width", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="height", min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="format", value_set=list(KNOWN_FORMATS)),
        gxe.ExpectColumnValuesToBeInSet(column="caption_status", value_set=list(CAPTION_STATUSES)),
        gxe.ExpectColumnValuesToBeOfType(column="caption", type_="str"),
        gxe.ExpectColumnValueLengthsToBeBetween(column="caption", min_value=1, max_value=params.max_caption_chars),
        gxe.ExpectColumnValuesToNotBeNull(column="caption", row_condition=status.is_in(CAPTION_USABLE)),
        gxe.ExpectColumnValuesToBeNull(column="caption", row_condition=status.is_not_in(CAPTION_USABLE)),
    ]
    dataset = [gxe.ExpectColumnMaxToBeBetween(column="quarantine_share", max_value=params.max_quarantine_share)]
    return GateSuites(manifest=manifest, dataset=dataset)


class AutoFilterGateParams(GateParams):
    """From the scorers that ran (photogenic.filtering.registry.gate_checks): each scorer's bounds
    on its own columns, read from its description, so a threshold is stated in one place."""

    min_rows: int = Field(1, ge=0, description="Fewest candidates the filter may leave.")
    max_rows: int | None = Field(None, ge=0, description="Most candidates (e.g. top-k, the curation budget).")
    #: score column -> (min, max); a column is checked for nulls unless it is in ``nullable_scores``
    score_bounds: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    nullable_scores: list[str] = Field(default_factory=list, description="score columns a survivor may lack")
    #: columns no two survivors share (near-duplicate clusters: no cluster represented twice)
    unique_scores: list[str] = Field(default_factory=list)


@register_suite("auto_filter", AutoFilterGateParams)
def auto_filter_suites(params: AutoFilterGateParams) -> GateSuites:
    """The candidate pool: unique samples, and every survivor's scores present and inside the
    thresholds that were configured (a survivor outside them means the cascade is broken)."""
    manifest = [
        gxe.ExpectTableRowCountToBeBetween(min_value=params.min_rows, max_value=params.max_rows),
        gxe.ExpectColumnValuesToNotBeNull(column="sample_id"),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
    ]
    for column in params.unique_scores:
        manifest += [gxe.ExpectColumnValuesToNotBeNull(column=column), gxe.ExpectColumnValuesToBeUnique(column=column)]
    for column, (low, high) in sorted(params.score_bounds.items()):
        # GE's column checks skip nulls: a nullable column is checked only where it has a value
        if column not in params.nullable_scores:
            manifest.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
        manifest.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    return GateSuites(manifest=manifest, dataset=[])


class CurationGateParams(GateParams):
    min_rows: int = Field(1, ge=0, description="Fewest samples the curated set may have.")
    stage1_quota: int = Field(ge=1, description="curation.stage1.quota")
    stage2_quota: int = Field(ge=1, description="curation.stage2.quota: the most rows the curated set may have.")
    min_agreement: float | None = Field(
        None, description="Floor on each stage's verdict kappa; None when a low agreement only warns.")


def _curation_expectations(params: CurationGateParams) -> list[gxe.Expectation]:
    """What every dataset from curation on carries: a selection within the quotas, and both
    stages' verdicts (keep, by construction of the selection) and votes on every row."""
    expectations = [
        gxe.ExpectTableRowCountToBeBetween(min_value=params.min_rows, max_value=params.stage2_quota),
        gxe.ExpectColumnValuesToNotBeNull(column="sample_id"),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
    ]
    for stage, quota in ((1, params.stage1_quota), (2, params.stage2_quota)):
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=f"stage{stage}_verdict"),
            gxe.ExpectColumnValuesToBeInSet(column=f"stage{stage}_verdict", value_set=["keep"]),
            gxe.ExpectColumnValuesToBeBetween(column=f"stage{stage}_votes", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column=f"stage{stage}_rank", min_value=1, max_value=quota),
        ]
        if params.min_agreement is not None:
            expectations += [
                gxe.ExpectColumnValuesToNotBeNull(column=f"stage{stage}_agreement"),
                gxe.ExpectColumnValuesToBeBetween(column=f"stage{stage}_agreement", min_value=params.min_agreement),
            ]
    return expectations


@register_suite("curation", CurationGateParams)
def curation_suites(params: CurationGateParams) -> GateSuites:
    """The curated set: the stage-2 selection, within the quotas, with both stages' verdicts."""
    return GateSuites(manifest=_curation_expectations(params), dataset=[])


class CaptionGateParams(CurationGateParams):
    min_chars: int = Field(1, ge=1, description="caption.min_chars")
    max_chars: int = Field(300, ge=1, description="caption.max_chars")
    max_alt_text_share: float = Field(1.0, ge=0.0, le=1.0, description="Largest share of alt-text captions.")


@register_suite("caption", CaptionGateParams)
def caption_suites(params: CaptionGateParams) -> GateSuites:
    """The captioned set: the curated set's guarantees, and on every row a non-empty training
    caption of bounded length whose source is recorded."""
    manifest = [
        *_curation_expectations(params),
        gxe.ExpectColumnValuesToNotBeNull(column="training_caption"),
        gxe.ExpectColumnValueLengthsToBeBetween(column="training_caption", min_value=params.min_chars,
                                                max_value=params.max_chars),
        gxe.ExpectColumnValuesToNotBeNull(column="training_caption_source"),
        gxe.ExpectColumnValuesToBeInSet(column="training_caption_source", value_set=["human", "model", "alt_text"]),
    ]
    if params.max_alt_text_share < 1.0:
        manifest.append(gxe.ExpectColumnValuesToBeInSet(
            column="training_caption_source", value_set=["human", "model"], mostly=1.0 - params.max_alt_text_share))
    return GateSuites(manifest=manifest, dataset=[])


class UpsampleGateParams(GateParams):
    min_short_side: int = Field(128, ge=1, description="Every row's training image reaches this short side.")
    min_rows: int = Field(1, ge=0)


#: upsample_backend values (null: the row needed no upsampling)
UPSAMPLE_BACKENDS = ("lanczos", "diffusion-x4", "diffusion-latent")


@register_suite("upsample", UpsampleGateParams)
def upsample_suites(params: UpsampleGateParams) -> GateSuites:
    """The upsampled dataset: every row's training image (upsampled or original) reaches the
    target short side, and each new image is recorded with its content hash and backend."""
    manifest = [
        gxe.ExpectTableRowCountToBeBetween(min_value=params.min_rows),
        gxe.ExpectColumnValuesToNotBeNull(column="sample_id"),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="training_short_side"),
        gxe.ExpectColumnValuesToBeBetween(column="training_short_side", min_value=params.min_short_side),
        gxe.ExpectColumnValuesToBeInSet(column="upsample_backend", value_set=list(UPSAMPLE_BACKENDS)),
        gxe.ExpectColumnValuesToMatchRegex(column="upsampled_sha256", regex=SHA256_HEX),
        gxe.ExpectColumnValuesToBeBetween(column="upsample_scale", min_value=1.0, strict_min=True),
    ]
    return GateSuites(manifest=manifest, dataset=[])


class TrainingSetGateParams(GateParams):
    resolution: int = Field(128, ge=1, description="The training resolution every image must reach.")
    buckets: list[str] = Field(default_factory=list, description="Allowed bucket names (WxH).")
    min_rows: int = Field(1, ge=0)


@register_suite("training_set", TrainingSetGateParams)
def training_set_suites(params: TrainingSetGateParams) -> GateSuites:
    """The packaged training set: no sample twice (so train and validation are disjoint: a
    sample has one split), both splits present, every caption non-empty text, every image
    packaged from at least the training resolution (never enlarged while packaging) into one of
    the configured buckets."""
    manifest = [
        gxe.ExpectTableRowCountToBeBetween(min_value=params.min_rows),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in
          ("sample_id", "shard", "offset", "length", "width", "height", "caption", "split", "bucket")),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="sample_id", regex=SHA256_HEX),
        gxe.ExpectColumnValuesToMatchRegex(column="caption", regex=r"\S"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "validation"]),
        gxe.ExpectColumnDistinctValuesToContainSet(column="split", value_set=["train", "validation"]),
        gxe.ExpectColumnValuesToBeBetween(column="source_short_side", min_value=params.resolution),
        gxe.ExpectColumnValuesToBeBetween(column="resize_scale", max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="length", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="offset", min_value=0),
    ]
    if params.buckets:
        manifest.append(gxe.ExpectColumnValuesToBeInSet(column="bucket", value_set=list(params.buckets)))
    return GateSuites(manifest=manifest, dataset=[])
