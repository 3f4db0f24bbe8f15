"""Emu's ablations as one command (``photogenic evaluate ablation``): does quality beat quantity,
does human curation add to the filter, how few images are enough, and does the effect hold at
another guidance scale?

Every arm starts from the same pretrained model (``training.quality_tune.init_from``), is
quality-tuned with the same recipe (``training.quality_tune``), and is judged on the same
prompts and seeds (``evaluate``) by the same judges:

- **data arms**, each of as many training rows as the curated training set has (its rows with
  ``split == train``), drawn with a fixed seed: ``curated`` (the training set itself),
  ``random`` (rows of the ingested pool, quality as the web gave it) and ``candidates`` (rows
  the auto-filter kept, before any person looked). Each arm's dataset also carries the curated
  set's validation rows, so every arm validates on the same pictures;
- **size arms**: ``curated-N``, the first N of a seeded shuffle of the curated rows, for each
  ``N`` of ``sizes`` below the curated set's size (Emu: 100 images already help);
- **guidance**: the curated arm against the pretrained model at each of ``guidance_scales``.

Each tuned arm is compared with the pretrained model, and the curated arm with the random and
the candidates arms head to head (``curated_vs_random``, ``curated_vs_candidates``). The
datasets are ``ablation-<arm>`` under the data root, the models ``models/ablation-<arm>``, the
evaluations ``datasets/ablation-<comparison>`` (each with its report and an MLflow run in
``EXPERIMENT``); the summary (``ablation/results.json`` and ``ablation/report.html`` under the
datasets folder) is logged as an MLflow run of its own. The tuned arms are not registered as
versions of the project's model.

The captions go with the rows: the curated set's are the specialists', the others' the web's
alt-text, as in Emu's comparison of its curated set with larger, uncurated ones.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from photogenic.config import RunConfig
from photogenic.dataset.atomic import write_text
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.store import Dataset, repoint_shards
from photogenic.evaluation.evaluate import run_evaluation
from photogenic.evaluation.models import raise_if_store_unusable
from photogenic.evaluation.report import CSS
from photogenic.htmlpage import escape
from photogenic.paths import dataset_dir, datasets_dir, join, model_dir
from photogenic.training.recipes.common import RunContext

log = logging.getLogger(__name__)

EXPERIMENT = "photogenic-ablation"
PREFIX = "ablation"
SUMMARY = "ablation"


@dataclass
class Comparison:
    name: str
    candidate: str
    baseline: str
    guidance_scale: float
    results: dict[str, Any] = field(default_factory=dict)

    def row(self, criterion: str) -> dict[str, Any]:
        return self.results.get("headline", {}).get(criterion, {})


def arm_rows(config: RunConfig, sizes: tuple[int, ...], seed: int) -> dict[str, tuple[str, pa.Table]]:
    """Per data arm, the dataset its rows come from and the rows (training rows only)."""
    root = config.data.root
    curated = Dataset(dataset_dir(root, config.training.quality_tune.input))
    table = curated.read_manifest()
    train = table.filter(pc.equal(table["split"], "train")) if "split" in table.column_names else table
    n = train.num_rows
    rng = np.random.default_rng(seed)
    arms: dict[str, tuple[str, pa.Table]] = {"curated": (curated.path, train)}
    for arm, source in (("random", config.training.pretrain.input), ("candidates", config.filter.output)):
        pool = Dataset(dataset_dir(root, source)).read_manifest()
        pool = pool.filter(pc.invert(pc.is_in(pool["sample_id"], value_set=train["sample_id"])))
        if pool.num_rows < n:
            raise ValueError(f"the {arm} arm needs {n} rows of {source!r}, which has {pool.num_rows} besides the "
                             "curated ones")
        pick = np.sort(rng.choice(pool.num_rows, size=n, replace=False))
        arms[arm] = (dataset_dir(root, source), pool.take(pa.array(pick)))
    order = rng.permutation(n)
    for size in sorted(s for s in sizes if s < n):
        arms[f"curated-{size}"] = (curated.path, train.take(pa.array(np.sort(order[:size]))))
    return arms


def write_arm(config: RunConfig, arm: str, source_path: str, rows: pa.Table) -> str:
    """The arm's dataset: its rows (split ``train``) and the curated validation rows, pointing at
    the images where they are; returns its name."""
    caption = config.training.quality_tune.caption_column
    name = f"{PREFIX}-{arm}"
    target = Dataset(dataset_dir(config.data.root, name), name=name)
    curated = Dataset(dataset_dir(config.data.root, config.training.quality_tune.input))
    keep = ["sample_id", "shard", "offset", "length", "width", "height", caption]
    train = repoint_shards(rows.select(keep), Dataset(source_path), target)
    parts = [train.append_column("split", pa.array(["train"] * train.num_rows))]
    manifest = curated.read_manifest()
    if "split" in manifest.column_names:
        validation = manifest.filter(pc.equal(manifest["split"], "validation")).select(keep)
        validation = repoint_shards(validation, curated, target)
        parts.append(validation.append_column("split", pa.array(["validation"] * validation.num_rows)))
    table = pa.concat_tables([p.cast(parts[0].schema) for p in parts])
    target.write(table, QUARANTINE_SCHEMA.empty_table(), {"stage": "ablation", "arm": arm, "rows": train.num_rows})
    return name


def tune(config: RunConfig, arm: str, dataset: str, progress: bool) -> str:
    """Quality-tune the pretrained model on the arm's dataset; the model's folder."""
    from photogenic.training.recipes import quality_tune

    arm_config = config.model_copy(deep=True)
    recipe = arm_config.training.quality_tune
    recipe.input, recipe.output = dataset, f"{PREFIX}-{arm}"
    arm_config.training.tracking.experiment = EXPERIMENT
    arm_config.training.tracking.register_model = False
    quality_tune.run(arm_config, RunContext(), progress=progress)
    return model_dir(config.data.root, recipe.output)


def compare(config: RunConfig, comparison: Comparison, progress: bool) -> Comparison:
    eval_config = config.model_copy(deep=True)
    eval_config.evaluate.output = f"{PREFIX}-{comparison.name}"
    eval_config.evaluate.experiment = EXPERIMENT
    eval_config.evaluate.sampling.guidance_scale = comparison.guidance_scale
    eval_config.evaluate.candidate_label, eval_config.evaluate.baseline_label = comparison.candidate, comparison.baseline
    # models by name (folders under <data.root>/models): a folder path would be read as relative
    # to the data root, which a relative data.root (the demo's "data") would then name twice
    models = {"pretrained": config.training.quality_tune.init_from}
    candidate = models.get(comparison.candidate) or f"{PREFIX}-{comparison.candidate}"
    baseline = models.get(comparison.baseline) or f"{PREFIX}-{comparison.baseline}"
    comparison.results = run_evaluation(eval_config, candidate=candidate, baseline=baseline, progress=progress).results
    return comparison


def plan(arms: list[str], guidance_scales: tuple[float, ...]) -> list[Comparison]:
    first = guidance_scales[0]
    out = [Comparison(f"{arm}-vs-pretrained", arm, "pretrained", first) for arm in arms]
    out += [Comparison(f"curated-vs-{other}", "curated", other, first) for other in ("random", "candidates")]
    out += [Comparison(f"curated-vs-pretrained-guidance-{g:g}", "curated", "pretrained", g) for g in guidance_scales[1:]]
    return out


def run_ablation(config: RunConfig, sizes: tuple[int, ...] = (25, 50, 100), guidance_scales: tuple[float, ...] = (),
                 seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Every arm tuned, every comparison judged; the summary written, logged and returned."""
    scales = tuple(dict.fromkeys((config.evaluate.sampling.guidance_scale, *guidance_scales)))
    arms = arm_rows(config, sizes, seed)
    for arm, (source, rows) in arms.items():
        log.info("ablation: quality-tuning the %s arm on %d rows", arm, rows.num_rows)
        tune(config, arm, write_arm(config, arm, source, rows), progress)
    comparisons = [compare(config, c, progress) for c in plan(list(arms), scales)]
    summary = {
        "arms": {arm: {"rows": rows.num_rows, "dataset": f"{PREFIX}-{arm}", "source": source.rsplit("/", 1)[-1]}
                 for arm, (source, rows) in arms.items()},
        "guidance_scales": list(scales),
        "comparisons": [{"name": c.name, "candidate": c.candidate, "baseline": c.baseline,
                         "guidance_scale": c.guidance_scale, "headline": c.results["headline"],
                         "evaluation": c.results["dataset"]["path"]} for c in comparisons],
    }
    folder = join(datasets_dir(config.data.root), SUMMARY)
    write_text(join(folder, "report.html"), report_html(summary))
    if config.evaluate.mlflow:
        summary["mlflow_run_id"] = _log(config, summary, join(folder, "report.html"))
    write_text(join(folder, "results.json"), json.dumps(summary, indent=2) + "\n")
    summary["folder"] = folder
    return summary


def win_rate(summary: dict[str, Any], name: str, criterion: str = "visual_appeal") -> float:
    row = next(c for c in summary["comparisons"] if c["name"] == name)["headline"].get(criterion, {})
    return float(row.get("win_rate", float("nan")))


def report_html(summary: dict[str, Any]) -> str:
    rows = []
    for c in summary["comparisons"]:
        cells = []
        for criterion in ("visual_appeal", "text_faithfulness"):
            row = c["headline"].get(criterion)
            cells.append("—" if not row else f"{row['win_rate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}] "
                         f"({row['wins']}/{row['ties']}/{row['losses']}, {escape(row['judge'])})")
        rows.append(f"<tr><td>{escape(c['candidate'])}</td><td>{escape(c['baseline'])}</td>"
                    f"<td>{c['guidance_scale']:g}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>")
    arms = "".join(f"<tr><td>{escape(a)}</td><td>{v['rows']}</td><td>{escape(v['source'])}</td></tr>"
                   for a, v in summary["arms"].items())
    body = ("<h1>Ablations</h1><p>Every arm quality-tuned from the same pretrained model with the same recipe, "
            "judged on the same prompts and seeds. Win rate of the first model over the second (ties count half), "
            "95% bootstrap interval, win/tie/loss.</p>"
            f"<h2>Arms</h2><table><tr><th>arm</th><th>training rows</th><th>from</th></tr>{arms}</table>"
            "<h2>Comparisons</h2><table><tr><th>model</th><th>against</th><th>guidance</th>"
            f"<th>visual appeal</th><th>text faithfulness</th></tr>{''.join(rows)}</table>")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Ablations</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")


def _log(config: RunConfig, summary: dict[str, Any], report: str) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.set_experiment(EXPERIMENT)
    except MlflowException as exc:
        raise_if_store_unusable(exc)
        raise
    with mlflow.start_run(run_name="ablation summary") as run:
        mlflow.log_params({f"arm.{a}.rows": v["rows"] for a, v in summary["arms"].items()})
        for c in summary["comparisons"]:
            for criterion, row in c["headline"].items():
                mlflow.log_metric(f"{c['name']}.{criterion}.win_rate", row["win_rate"])
        mlflow.log_artifact(report)
        mlflow.log_dict(summary, "ablation.json")
        return run.info.run_id
