"""ZenML's ``log_metadata`` for every step and pipeline: what is recorded on a run outlives it in
ZenML's store and dashboard, so every string in it is redacted first (a URI's credentials,
photogenic.safety.secrets)."""

from __future__ import annotations

from typing import Any

from zenml import log_metadata as _zenml_log_metadata

from photogenic.safety.secrets import redact_tree


def log_metadata(metadata: dict[str, Any], **where: Any) -> None:
    _zenml_log_metadata(metadata=redact_tree(metadata), **where)
