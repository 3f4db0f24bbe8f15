"""Where every input row of a stage ended, counted per input shard, for the stage's card.

An outcome is ``kept``, ``rejected`` (with a reason, in the stage's own table) or
``quarantined`` (with a reason, in the quarantine table); ingest adds ``duplicate`` (a sample
whose image another row already holds: its source joins that row's ``sources``). The shards are
keyed by their names as the manifest or the source records them: names from data, counted,
never opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

KEPT, REJECTED, QUARANTINED, DUPLICATE = "kept", "rejected", "quarantined", "duplicate"
OUTCOMES = (KEPT, REJECTED, QUARANTINED)
#: the card's key for the counts
CARD_KEY = "by_input_shard"


def count_by_shard(outcomes: Iterable[tuple[str | None, str]],
                   before: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """``{shard: {outcome: rows}}`` of ``(shard, outcome)`` pairs, added to the counts
    ``before`` (an earlier run's, for a stage that adds to its dataset), shards sorted."""
    counts = {shard: {**dict.fromkeys(OUTCOMES, 0), **seen} for shard, seen in (before or {}).items()}
    for shard, outcome in outcomes:
        row = counts.setdefault(str(shard), dict.fromkeys(OUTCOMES, 0))
        row[outcome] = row.get(outcome, 0) + 1
    return {shard: dict(sorted(counts[shard].items())) for shard in sorted(counts)}


def totals(counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Each outcome's rows over every shard."""
    out: dict[str, int] = {}
    for seen in counts.values():
        for outcome, rows in seen.items():
            out[outcome] = out.get(outcome, 0) + rows
    return dict(sorted(out.items()))
