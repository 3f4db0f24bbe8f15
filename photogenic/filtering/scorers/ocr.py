"""Text area: the share of the image covered by text lines, found by the text detection model
that ships in rapidocr-onnxruntime (PP-OCRv4 det). Only detection runs: the filter needs to
know where text is, not what it says, and recognition would triple the cost.

Emu removed images with much text (OCR); overlays, captions burnt into memes and stock-photo
watermarks are what this catches. The detector also fires on large textured regions (a brick
wall, a car body), so only boxes shaped like a text line count: wider than tall, and not taller
than a share of the image (filter.ocr.min_line_aspect, filter.ocr.max_line_height).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from photogenic.config import OcrFilterConfig
from photogenic.filtering.registry import register_scorer
from photogenic.filtering.scorer import Columns, Scorer
from photogenic.filtering.scorers.onnx import session, single_threaded


@register_scorer
class TextAreaScorer(Scorer):
    name = "ocr"
    version = "1"
    # median per image on the sample pool on one core (the image scaled to a 320 px short side);
    # benchmarks/filter_speed.py prints the measured costs beside the declared ones
    cost_ms = 55.0
    needs_pixels = True
    bounded_by = {"max_text_area": ("text_area", "max")}

    config: OcrFilterConfig

    def __init__(self, config: OcrFilterConfig):
        super().__init__(config)
        self._detector = None  # loaded once per worker process, on first use

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_detector": None}  # the model never travels to a worker

    @property
    def detector(self):
        if self._detector is None:
            self._detector = load_text_detector(self.config)
        return self._detector

    def score(self, rows: list[dict[str, Any]], images: list[np.ndarray] | None) -> Columns:
        areas, lines = [], []
        for image in images:
            boxes, shape = text_lines(self.detector, image, self.config)
            areas.append(covered_share(boxes, shape))
            lines.append(len(boxes))
        return {self.column("text_area"): areas, self.column("lines"): lines}

    def reasons(self, columns: Columns) -> list[str | None]:
        limit = self.config.max_text_area
        return [f"text covers {area:.1%} of the image > filter.ocr.max_text_area={limit}" if area > limit else None
                for area in columns[self.column("text_area")]]


def load_text_detector(config: OcrFilterConfig):
    """rapidocr's text detector alone (its RapidOCR class would also load the recognition and
    orientation models), configured from the package's own config file, one thread: the cascade
    parallelises across worker processes, not inside one."""
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
    from rapidocr_onnxruntime.utils import read_yaml, update_model_path

    settings = update_model_path(read_yaml(DEFAULT_CFG_PATH))["Det"]
    # "max": the detector only shrinks what is larger than its limit (960 px and up), which
    # detector_input() never makes; the scale is chosen there
    settings.update(single_threaded(), limit_type="max", box_thresh=config.box_threshold)
    detector = TextDetector(settings)
    detector.infer.session = session(settings["model_path"], varying_shapes=True)  # see onnx.session
    return detector


def detector_input(image: np.ndarray, min_side: int) -> np.ndarray:
    """The image scaled so that its short side is ``min_side`` (its long side at most four times
    that), in BGR. Text on a web image is sized relative to the image, so one scale serves
    every size: small watermarks stay legible to the detector, and a large photo costs no more
    than a small one (the detector's cost grows with the pixel count)."""
    h, w = image.shape[:2]
    scale = min(min_side / min(h, w), 4 * min_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image[:, :, ::-1]), size, interpolation=interpolation)


def text_lines(detector, image: np.ndarray, config: OcrFilterConfig) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The detected boxes shaped like a line of text (4x2 corner arrays) in the pixels of the
    scaled image the detector saw, and that image's shape: what is measured are shares of the
    image, which do not change with scale."""
    if min(image.shape[:2]) < 4:  # nothing can be read in a sliver; the detector would fail on it
        return [], image.shape[:2]
    scaled = detector_input(image, config.min_side)
    boxes, _ = detector(scaled)
    if boxes is None or not len(boxes):
        return [], scaled.shape[:2]
    short = min(scaled.shape[:2])
    kept = []
    for box in boxes:
        width, height = np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[0] - box[3])
        if width >= config.min_line_aspect * height and height <= config.max_line_height * short:
            kept.append(box)
    return kept, scaled.shape[:2]


def covered_share(boxes: list[np.ndarray], shape: tuple[int, int]) -> float:
    """Share of the image's pixels inside any box (overlaps counted once)."""
    if not boxes:
        return 0.0
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(b).astype(np.int32) for b in boxes], 1)
    return float(mask.mean())
