"""One evaluation: sample both models on the prompt set, judge every image, compare them in
pairs, and write the results, the report, and (optionally) an MLflow run.

The output is a photogenic dataset (``<data.root>/datasets/<evaluate.output>``): its manifest has
one row per generated image (``sample_id`` = sha256 of the PNG, shard/offset/length into its own
shards, ``model``, ``prompt_id``, ``prompt``, ``category``, ``seed``, ``replicate`` and a
``score_<judge>`` column per judge). Beside the manifest, in the same folder:

- ``comparisons.parquet``: one row per (prompt, seed, judge) with both scores and the outcome;
- ``win_rates.parquet``: win/tie/loss, win rate, interval and sign-test p per judge and category;
- ``results.json``: the models (with their registry lineage), settings, headline per criterion,
  every win-rate row, FID/KID;
- ``report.html``: the self-contained report (``photogenic.evaluation.report``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from photogenic.config import RunConfig
from photogenic.dataplane.session import ray_session
from photogenic.dataset.atomic import write_text
from photogenic.dataset.ref import DatasetRef
from photogenic.dataset.schema import QUARANTINE_SCHEMA
from photogenic.dataset.shards import ShardWriter, list_shards, next_shard_index
from photogenic.dataset.store import Dataset, parquet_bytes
from photogenic.errors import ConfigError
from photogenic.evaluation.comparisons import ALL, pair_outcomes, win_rate_table
from photogenic.evaluation.judges.registry import (CRITERIA, build_judges, member_column, prepare_judges, score_all,
                                                  score_members_all)
from photogenic.evaluation.models import ModelRef, raise_if_store_unusable, resolve_model
from photogenic.evaluation.prompts import Prompt, load_prompts
from photogenic.evaluation.reference import reference_images
from photogenic.evaluation.report import write_report
from photogenic.evaluation.results import COMPARISONS, FORMAT, REPORT, RESULTS, WIN_RATES
from photogenic.evaluation.sampling import SamplingSettings, decode_png, jobs_for, sample_model
from photogenic.paths import dataset_dir, join, under_root
from photogenic.safety.secrets import redact_tree

log = logging.getLogger(__name__)



@dataclass
class EvaluationResult:
    ref: DatasetRef
    results: dict[str, Any]
    folder: str

    @property
    def report(self) -> str:
        return join(self.folder, REPORT)

    @property
    def results_path(self) -> str:
        return join(self.folder, RESULTS)


def sampling_settings(config: RunConfig) -> SamplingSettings:
    s = config.evaluate.sampling
    return SamplingSettings(num_inference_steps=s.num_inference_steps, guidance_scale=s.guidance_scale,
                            scheduler=s.scheduler, seeds_per_prompt=s.seeds_per_prompt, base_seed=s.seed,
                            batch_size=s.batch_size, device=s.device, dtype=s.dtype, height=s.height, width=s.width)


def resolve_models(config: RunConfig, candidate: str | None = None, baseline: str | None = None) -> list[ModelRef]:
    settings = config.evaluate
    specs = [(settings.candidate_label, candidate or settings.candidate, "candidate"),
             (settings.baseline_label, baseline or settings.baseline, "baseline")]
    missing = [key for _, spec, key in specs if not spec]
    if missing:
        raise ConfigError("Evaluation compares two models: set " + " and ".join(f"evaluate.{k}" for k in missing)
                          + " to a diffusers pipeline folder or a models:/name/version URI (or pass them to "
                          "`photogenic evaluate compare`).")
    if settings.candidate_label == settings.baseline_label:
        raise ConfigError("evaluate.candidate_label and evaluate.baseline_label must differ.")
    return [resolve_model(spec, label, config.data.root) for label, spec, _ in specs]


def run_evaluation(config: RunConfig, candidate: str | None = None, baseline: str | None = None,
                   progress: bool = True) -> EvaluationResult:
    """Evaluate the candidate against the baseline as the config says; see the module docstring."""
    settings = config.evaluate
    models = resolve_models(config, candidate, baseline)
    prompts = load_prompts(under_root(config.data.root, settings.prompts, "prompt file"), limit=settings.max_prompts)
    judges = build_judges(settings.judges, config.data.root)
    prepare_judges(judges, settings.judges.workers, progress=progress)
    extractor = _fid_extractor(config)
    # the reference set is read before any sampling, so that a missing one fails at once
    reference = _reference(config) if extractor is not None else None
    sampling = sampling_settings(config)
    jobs = jobs_for(prompts, sampling)
    log.info("evaluate: %d prompts x %d seeds x %d models, judges %s", len(prompts), sampling.seeds_per_prompt,
             len(models), ", ".join(j.name for j in judges))

    dataset = Dataset(dataset_dir(config.data.root, settings.output), settings.output)
    # new shards after any an earlier evaluation left: its manifest stays valid until ours replaces it
    first = next_shard_index(list_shards(dataset.shards_dir))
    writer = ShardWriter(dataset.shards_dir, first_index=first, max_images=config.ingest.shard_max_images,
                         max_bytes=config.ingest.shard_max_bytes)
    stored: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    features: dict[str, list[np.ndarray]] = {m.label: [] for m in models}
    try:
        # one Ray for both models, when the sampling runs on the data plane
        with ray_session() if settings.sampling.workers or settings.gpus else contextlib.nullcontext():
            for model in models:
                batch: list = []
                for sample in sample_model(model.label, model.path, jobs, sampling, progress=progress,
                                           workers=settings.sampling.workers, gpus=settings.gpus):
                    batch.append(sample)
                    if len(batch) == sampling.batch_size:
                        rows.extend(_judge_and_store(batch, model, judges, writer, stored, extractor, features))
                        batch = []
                if batch:
                    rows.extend(_judge_and_store(batch, model, judges, writer, stored, extractor, features))
        writer.close_shard()
    except BaseException:
        writer.abort()
        raise

    samples = pd.DataFrame(rows)
    judge_info = [(j.name, j.criterion, j.tie_margin) for j in judges]
    a, b = models[0].label, models[1].label
    comparisons = pair_outcomes(samples, judge_info, a, b)
    table = win_rate_table(comparisons, n_boot=settings.bootstrap, level=settings.level, seed=settings.seed)
    fid = _fid_results(config, extractor, reference, features) if extractor is not None else None

    results = {
        "format": FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model_a": a,
        "model_b": b,
        "models": {m.label: m.as_dict() for m in models},
        "prompts": {"path": settings.prompts, "count": len(prompts),
                    "categories": dict(pd.Series([p.category for p in prompts]).value_counts().sort_index())},
        "sampling": sampling.__dict__,
        "judges": [{"name": n, "criterion": c, "tie_margin": m} for n, c, m in judge_info],
        "headline": headline(table, judge_info, comparisons,
                             {j.name: j.faithful_at for j in judges if hasattr(j, "faithful_at")}),
        "judge_cards": {j.name: j.card for j in judges if getattr(j, "card", None) is not None},
        "win_rates": json.loads(table.to_json(orient="records")),
        "fid": fid,
        "fid_off": None if extractor is not None else "no feature extractor configured (evaluate.fid.extractor)",
    }
    results["prompts"]["categories"] = {k: int(v) for k, v in results["prompts"]["categories"].items()}

    manifest = pa.Table.from_pandas(samples, preserve_index=False)
    card = {"stage": "evaluate", "rows": len(samples), "images_stored": len(stored), "models": results["models"],
            "prompts": results["prompts"], "judges": results["judges"]}
    ref = dataset.write(manifest, _empty_quarantine(), card, files={
        COMPARISONS: parquet_bytes(pa.Table.from_pandas(comparisons, preserve_index=False)),
        WIN_RATES: parquet_bytes(pa.Table.from_pandas(table, preserve_index=False))})
    dataset.discard_unreferenced_shards({f"shards/{s.shard}" for s in stored.values()})
    results["dataset"] = ref.model_dump()

    write_report(join(dataset.path, REPORT), results, dataset, samples, table)
    if settings.mlflow:
        results["mlflow_run_id"] = log_to_mlflow(config, results, join(dataset.path, REPORT))
    write_text(join(dataset.path, RESULTS), json.dumps(results, indent=2, default=_json_default) + "\n")
    log.info("evaluate: %d images, %d comparisons -> %s", len(samples), len(comparisons), dataset.path)
    return EvaluationResult(ref=ref, results=results, folder=dataset.path)


def _judge_and_store(batch, model: ModelRef, judges, writer: ShardWriter, stored: dict, extractor, features):
    images = [decode_png(s.png) for s in batch]
    prompts: list[Prompt] = [s.job.prompt for s in batch]
    scores, votes = {}, {}
    for judge in judges:
        members = score_members_all(judge, images, prompts)
        if members is None:
            scores[judge.name] = score_all(judge, images, prompts)
        else:  # a panel: its score is the members' mean, each member's kept for its own vote
            scores[judge.name] = members.mean(axis=1)
            votes.update({member_column(judge.name, m): members[:, m] for m in range(members.shape[1])})
    if extractor is not None:
        features[model.label].append(extractor.features(images))
    rows = []
    for i, s in enumerate(batch):
        sha = s.sha256
        if sha not in stored:  # content-addressed: identical images are kept once
            stored[sha] = writer.add(sha, "png", s.png)
        where = stored[sha]
        rows.append({"sample_id": sha, "shard": f"shards/{where.shard}", "offset": where.offset,
                     "length": where.length, "width": s.width, "height": s.height, "format": "PNG",
                     "model": model.label, "model_spec": model.spec, "prompt_id": s.job.prompt.prompt_id,
                     "prompt": s.job.prompt.prompt, "category": s.job.prompt.category, "seed": s.job.seed,
                     "replicate": s.job.replicate,
                     **{f"score_{name}": float(values[i]) for name, values in scores.items()},
                     **{column: float(values[i]) for column, values in votes.items()}})
    return rows


def headline(table: pd.DataFrame, judge_info: list[tuple[str, str, float]], comparisons: pd.DataFrame | None = None,
             faithful_at: dict[str, float] | None = None) -> dict[str, Any]:
    """Per criterion, the overall win rate of its first judge (the one the config lists first).
    For a judge with a score at which a picture shows everything the prompt names (``faithful_at``:
    Emu's text-faithfulness question), the ties split into the shares of pairs where both
    pictures do ("both") and where both fall short alike ("neither")."""
    faithful_at = faithful_at or {}
    out = {}
    for criterion in CRITERIA:
        names = [n for n, c, _ in judge_info if c == criterion]
        if not names:
            continue
        row = table[(table["judge"] == names[0]) & (table["category"] == ALL)]
        if len(row):
            out[criterion] = {"judge": names[0], **{k: _plain(v) for k, v in row.iloc[0].to_dict().items()}}
            if names[0] in faithful_at and comparisons is not None:
                pairs = comparisons[comparisons["judge"] == names[0]]
                tie = pairs["outcome"] == 0
                both = tie & (pairs[["score_a", "score_b"]].min(axis=1) >= faithful_at[names[0]])
                out[criterion]["both_share"] = float(both.mean()) if len(pairs) else float("nan")
                out[criterion]["neither_share"] = float((tie & ~both).mean()) if len(pairs) else float("nan")
    return out


def headline_lines(results: dict[str, Any]) -> list[str]:
    """The headline as people read it: per criterion, A's win rate over B with its interval."""
    a, b = results["model_a"], results["model_b"]
    return [f"{criterion} ({row['judge']}): {a} vs {b} win rate {row['win_rate']:.3f} "
            f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}], {row['wins']}/{row['ties']}/{row['losses']} "
            f"win/tie/loss{_both_neither(row)}, sign test p={row['p_value']:.3g}"
            for criterion, row in results["headline"].items()]


def _both_neither(row: dict[str, Any]) -> str:
    return f" (ties: both {row['both_share']:.3f}, neither {row['neither_share']:.3f})" if "both_share" in row else ""


def _fid_extractor(config: RunConfig):
    settings = config.evaluate.fid
    if not settings.extractor:
        return None
    from photogenic.evaluation.fid import TorchScriptExtractor

    path = under_root(config.data.root, settings.extractor, "feature extractor")
    return TorchScriptExtractor.load(path, size=settings.input_size, device=config.evaluate.sampling.device)


def _reference(config: RunConfig) -> list:
    settings = config.evaluate.fid
    return reference_images(config, settings.reference, settings.max_reference, seed=config.evaluate.seed)


def _fid_results(config: RunConfig, extractor, images: list, features: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    from photogenic.evaluation.fid import fid_from_features, kernel_inception_distance

    settings = config.evaluate.fid
    reference = extractor.features(images)
    out: dict[str, Any] = {"reference": settings.reference, "reference_images": len(images)}
    for label, parts in features.items():
        feats = np.concatenate(parts)
        kid, kid_std = kernel_inception_distance(feats, reference, settings.kid_subset_size, settings.kid_subsets,
                                                 seed=config.evaluate.seed)
        out[label] = {"fid": fid_from_features(feats, reference), "kid": kid, "kid_std": kid_std,
                      "images": int(feats.shape[0])}
    return out


def log_to_mlflow(config: RunConfig, results: dict[str, Any], report: str) -> str:
    """An MLflow run with the settings, every overall win rate as metrics, and the report."""
    import mlflow
    from mlflow.exceptions import MlflowException

    a, b = results["model_a"], results["model_b"]
    active = mlflow.active_run()
    if active is None:  # a pipeline's step runs inside its experiment tracker's run: log there
        try:
            mlflow.set_experiment(config.evaluate.experiment)
        except MlflowException as exc:
            raise_if_store_unusable(exc)
            raise
    with (contextlib.nullcontext(active) if active is not None
          else mlflow.start_run(run_name=f"evaluate {a} vs {b}")) as run:
        # a model spec may be a URI (a models:/ or s3:// location): its credentials stay out of MLflow
        params = {"prompts": results["prompts"]["path"], "prompt_count": results["prompts"]["count"],
                  **{f"sampling.{k}": v for k, v in results["sampling"].items()},
                  **{f"{label}.spec": m["spec"] for label, m in results["models"].items()}}
        mlflow.log_params(redact_tree(params))
        for label, m in results["models"].items():
            for key in ("registered_name", "version", "run_id"):
                if m.get(key):
                    mlflow.set_tag(f"{label}.{key}", redact_tree(m[key]))
        for row in results["win_rates"]:
            if row["category"] == ALL:
                for key in ("win_rate", "ci_low", "ci_high", "p_value", "win_share", "tie_share", "loss_share"):
                    if row.get(key) is not None and np.isfinite(row[key]):
                        mlflow.log_metric(f"{row['judge']}.{key}", row[key])
        for label, values in (results.get("fid") or {}).items():
            if isinstance(values, dict):
                for key in ("fid", "kid"):
                    mlflow.log_metric(f"{label}.{key}", values[key])
        mlflow.log_artifact(report)
        mlflow.log_dict(redact_tree(json.loads(json.dumps(results, default=_json_default))), "results.json")
        return run.info.run_id


def _empty_quarantine() -> pa.Table:
    return QUARANTINE_SCHEMA.empty_table()


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
