"""Offensive content: the NSFW detector that ships in nudenet (a YOLOv8n exported to ONNX with
its weights inside the package). The score is the highest confidence of any offensive class
(filter.nsfw.classes) detected in the image, 0 when there is none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from photogenic.config import NsfwFilterConfig
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, Scorer
from photogenic.filtering.scorers.onnx import session


@register_scorer
class NsfwScorer(Scorer):
    name = "nsfw"
    version = "1"
    # one 320x320 detector pass whatever the image size: the median per image on the sample pool
    # on one core (benchmarks/filter_speed.py prints the measured costs beside the declared ones)
    cost_ms = 42.0
    needs_pixels = True
    bounded_by = {"max_score": (None, "max")}
    # what counts as offensive is a policy, not something generalists' keep/reject verdicts on
    # photogenic quality can teach: `photogenic filter calibrate` leaves it as configured
    calibrated = False

    config: NsfwFilterConfig

    def __init__(self, config: NsfwFilterConfig, detector=None):
        super().__init__(config)
        #: anything with nudenet's ``detect(bgr_array) -> [{"class", "score", "box"}]``; loaded
        #: once per worker process on first use when not given
        self._detector = detector

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_detector": None}

    @property
    def detector(self):
        if self._detector is None:
            self._detector = load_nsfw_detector()
        return self._detector

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        offensive = set(self.config.classes)
        scores, found = [], []
        for image in images:
            detections = [d for d in self.detector.detect(np.ascontiguousarray(image[:, :, ::-1]))
                          if d["class"] in offensive]
            best = max(detections, key=lambda d: d["score"], default=None)
            scores.append(float(best["score"]) if best else 0.0)
            found.append(best["class"] if best else None)
        return {self.column(): scores, self.column("class"): found}

    def reasons(self, columns: Columns) -> list[str | None]:
        limit = self.config.max_score
        return [f"offensive content: {cls} detected at {score:.2f} > filter.nsfw.max_score={limit}"
                if score > limit else None
                for score, cls in zip(columns[self.column()], columns[self.column("class")])]


def load_nsfw_detector():
    """nudenet's detector with its session rebuilt single-threaded (its constructor takes no
    session options, and its default uses every core in every worker)."""
    from nudenet import NudeDetector

    detector = NudeDetector()
    detector.onnx_session = session(detector.onnx_session._model_path)
    return detector
