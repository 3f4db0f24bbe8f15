"""One human-readable line per failed expectation, from GE's validation results.

GE's results are nested dicts meant for Data Docs; a person reading a failed run in a terminal or
in the orchestrator's metadata wants: which expectation, on which column (and rows), what it
expected, and what it saw, with a few offending values or the sample_ids of offending rows.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
from great_expectations.expectations.row_conditions import deserialize_row_condition

#: kwargs that are shown elsewhere in the line (column, condition) or are GE bookkeeping
_NOT_SHOWN = {"batch_id", "column", "row_condition", "condition_parser", "result_format", "catch_exceptions", "meta"}
#: how the unexpected values of a column map expectation are described, by expectation type
_UNEXPECTED = {
    "expect_column_values_to_be_unique": "are duplicates",
    "expect_column_values_to_not_be_null": "are null",
    "expect_column_values_to_be_null": "are not null",
}
_EXAMPLES = 3
_SHORT = 12


def failure_lines(result: ExpectationSuiteValidationResult) -> list[str]:
    return [describe(r) for r in result.results if not r.success]


def describe(result: ExpectationValidationResult) -> str:
    """``type(column, expected…) where condition: observed…``."""
    config = result.expectation_config
    return f"{_signature(config.type, config.kwargs)}: {_observed(config.type, result)}"


def _signature(kind: str, kwargs: dict[str, Any]) -> str:
    args = [str(kwargs["column"])] if kwargs.get("column") else []
    args += [
        f"{key}={_value(value, 40)}" for key, value in kwargs.items() if key not in _NOT_SHOWN and value is not None
    ]
    condition = kwargs.get("row_condition")
    where = f" where {deserialize_row_condition(condition)!r}" if condition else ""
    return f"{kind}({', '.join(args)}){where}"


def _observed(kind: str, result: ExpectationValidationResult) -> str:
    error = _exception_message(result.exception_info or {})
    if error:
        return f"could not be evaluated: {error}"
    observed = result.result or {}
    if "observed_value" in observed:
        return f"observed {_value(observed['observed_value'], 40)}"
    if observed.get("unexpected_count") is not None:
        line = (
            f"{observed['unexpected_count']} of {observed['element_count']} values "
            f"{_UNEXPECTED.get(kind, 'are unexpected')}"
        )
        examples = _examples(observed, show_length="length" in kind)
        return f"{line}, e.g. {examples}" if examples else line
    return "failed"


def _exception_message(info: dict[str, Any]) -> str | None:
    """GE reports an exception either flat (raised_exception, exception_message) or keyed by the
    metric that raised it; either way, the first message is what the user needs."""
    if info.get("raised_exception"):
        return info.get("exception_message")
    nested = (value for value in info.values() if isinstance(value, dict) and value.get("raised_exception"))
    return next((value.get("exception_message") for value in nested), None)


def _examples(observed: dict[str, Any], show_length: bool) -> str | None:
    """A few distinct offending values; for null values (which say nothing), the ids of the rows."""
    values = [item["value"] for item in observed.get("partial_unexpected_counts") or [] if "value" in item]
    present = [value for value in values if not _missing(value)][:_EXAMPLES]
    if present:
        return "[" + ", ".join(_example(value, show_length) for value in present) + "]"
    rows = [row for row in observed.get("partial_unexpected_index_list") or [] if isinstance(row, dict)]
    id_columns = observed.get("unexpected_index_column_names") or []
    if rows and id_columns:
        column = id_columns[0]
        ids = [_value(row.get(column), _SHORT) for row in rows[:_EXAMPLES]]
        return f"{column} [{', '.join(ids)}]"
    return None


def _example(value: Any, show_length: bool) -> str:
    text = _value(value, _SHORT)
    return f"{text} ({len(value)} chars)" if show_length and isinstance(value, str) else text


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _value(value: Any, width: int) -> str:
    """A short repr: long strings cut, numbers (numpy's too) as plain numbers, sequences element
    by element."""
    if isinstance(value, str):
        if len(value) <= width:
            return repr(value)
        cut = repr(value[:width])
        return f"{cut[:-1]}…{cut[-1]}"
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):g}"
    if isinstance(value, (list, tuple, set)):
        return "[" + ", ".join(_value(item, width) for item in value) + "]"
    return repr(value)


def expectation_rows(result: ExpectationSuiteValidationResult) -> list[tuple[bool, str, str]]:
    """(passed, expectation, observed) for every expectation of a suite run, for summaries."""
    return [
        (bool(r.success), _signature(r.expectation_config.type, r.expectation_config.kwargs),
         _observed(r.expectation_config.type, r))
        for r in result.results
    ]
