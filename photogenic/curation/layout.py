"""Where curation files live, under ``<data.root>/<curation.dir>/``::

    images/<sample_id>.<ext>             the candidates' images as files, for Label Studio's
                                         local-files storage (tasks point at them)
    stage<N>/label_config.xml            the stage's labeling configuration
    stage<N>/tasks.json                  Label Studio tasks, every task once
    stage<N>/batches/<annotator>.json    the tasks assigned to each annotator (with overlap)
    stage<N>/tasks.csv                   the same assignments as a CSV to fill in
    stage<N>/annotations/                exports coming back: Label Studio JSON or CSV files;
                                         simulated ones are named simulated-<annotator>.json
    stage<N>/result.parquet              one row per sample: votes, verdict, selection
    stage<N>/quarantine.parquet          bad annotation rows set aside by --skip-bad, with reasons
    stage<N>/agreement.json              kappa per question, and the import's counts
"""

from __future__ import annotations

from dataclasses import dataclass

from photogenic.config import RunConfig
from photogenic.paths import join, under_root


@dataclass(frozen=True)
class CurationLayout:
    root: str

    @classmethod
    def of(cls, config: RunConfig) -> CurationLayout:
        return cls(under_root(config.data.root, config.curation.dir, "curation.dir"))

    @property
    def images(self) -> str:
        return join(self.root, "images")

    def stage(self, stage: int) -> str:
        return join(self.root, f"stage{stage}")

    def label_config(self, stage: int) -> str:
        return join(self.stage(stage), "label_config.xml")

    def tasks(self, stage: int) -> str:
        return join(self.stage(stage), "tasks.json")

    def tasks_csv(self, stage: int) -> str:
        return join(self.stage(stage), "tasks.csv")

    def batch(self, stage: int, annotator: str) -> str:
        return join(self.stage(stage), "batches", f"{annotator}.json")

    def annotations(self, stage: int) -> str:
        return join(self.stage(stage), "annotations")

    def result(self, stage: int) -> str:
        return join(self.stage(stage), "result.parquet")

    def quarantine(self, stage: int) -> str:
        return join(self.stage(stage), "quarantine.parquet")

    def agreement(self, stage: int) -> str:
        return join(self.stage(stage), "agreement.json")
