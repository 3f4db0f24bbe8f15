"""A scorer that holds a "model" (it runs in Ray actors like OCR, NSFW and CLIP) and can
misbehave on purpose: die by SIGKILL once, the first time it is called (its marker file then
exists), or take its time per chunk, so that a run can be killed in the middle."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from photogenic.filtering.scorer import Columns, Scorer


class ToyModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    min_mean: float = 100.0
    #: a file: the first call that finds it missing creates it and kills its own process
    die_once: str | None = None
    seconds_per_call: float = 0.0


class ToyModelScorer(Scorer):
    """Mean brightness, computed by a worker that 'loaded a model' (its process id)."""

    name, version, cost_ms, needs_pixels, holds_model = "toy_model", "1", 50.0, True, True

    def score(self, rows, images) -> Columns:
        if self.config.die_once and not Path(self.config.die_once).exists():
            Path(self.config.die_once).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.config.seconds_per_call)
        return {self.column(): [float(np.asarray(image).mean()) for image in images]}

    def reasons(self, columns: Columns):
        limit = self.config.min_mean
        return [f"mean {v:.1f} < filter.toy_model.min_mean={limit}" if v < limit else None
                for v in columns[self.column()]]


def register(monkeypatch=None) -> None:
    """Register the scorer and its config section, as its module would (for a test, through
    ``monkeypatch``; in a child process for good)."""
    import photogenic.config as config_module
    from photogenic.filtering import registry

    if monkeypatch is not None:
        monkeypatch.setitem(config_module._EXTRA_FILTER_SECTIONS, "toy_model", ToyModelSettings)
        monkeypatch.setitem(registry._SCORERS, "toy_model", ToyModelScorer)
    else:
        config_module._EXTRA_FILTER_SECTIONS["toy_model"] = ToyModelSettings
        registry._SCORERS["toy_model"] = ToyModelScorer
