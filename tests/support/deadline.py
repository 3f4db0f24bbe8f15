"""A test that would hang fails by a deadline instead: what multiprocessing.Pool did with a task
whose worker died was to wait for it forever."""

from __future__ import annotations

import threading

DEADLINE = 120


def within_deadline(work, deadline: float = DEADLINE):
    """``work()``'s value (or its exception), failing the test if it takes longer than ``deadline`` s."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(deadline)
    assert not thread.is_alive(), f"still waiting after {deadline} s: a lost task is never returned"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
