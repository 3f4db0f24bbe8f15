"""``photogenic evaluate``: pairwise evaluation of two models, human ratings, the promotion gate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from photogenic.cli.options import ConfigOption, QuietOption, SetOption, existing_config
from photogenic.config import RunConfig
from photogenic.paths import dataset_dir

app = typer.Typer(help="Pairwise evaluation of two models, human ratings, the promotion gate.",
                  no_args_is_help=True)


def _evaluation_folder(cfg: RunConfig) -> str:
    return dataset_dir(cfg.data.root, cfg.evaluate.output)


@app.command("compare")
def evaluate_compare(
    candidate: Annotated[str, typer.Argument(help="Model A: a diffusers pipeline folder or models:/name/version.")],
    baseline: Annotated[str, typer.Argument(help="Model B, the same forms.")],
    config: ConfigOption = Path("configs/default.yaml"),
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Sample both models on the prompt set, judge, and print the win rates of A over B."""
    from photogenic.evaluation.evaluate import headline_lines, run_evaluation

    cfg = existing_config(config, set_)
    result = run_evaluation(cfg, candidate=candidate, baseline=baseline, progress=not quiet)
    for line in headline_lines(result.results):
        typer.echo(line)
    typer.echo(f"results: {result.results_path}\nreport: {result.report}")


@app.command("prompts")
def evaluate_prompts(
    out: Annotated[Path, typer.Option(help="TSV file to write.")] = Path("data/prompts/sample_world.tsv"),
    n: Annotated[int, typer.Option(help="Number of prompts.")] = 180,
    seed: Annotated[int, typer.Option(help="Seed of the held-out scene stream.")] = 0,
    pool_n: Annotated[int, typer.Option(help="Size of the training pool whose captions are held out.")] = 4000,
    pool_seed: Annotated[int, typer.Option(help="Seed of that pool.")] = 0,
) -> None:
    """Write the sample world's held-out evaluation prompts (scenes no training caption describes)."""
    from photogenic.evaluation.prompts import write_prompts
    from photogenic.evaluation.world_prompts import sample_world_prompts

    prompts = sample_world_prompts(n, seed=seed, pool_n=pool_n, pool_seed=pool_seed)
    write_prompts(str(out), prompts)
    typer.echo(f"{len(prompts)} prompts -> {out}")


@app.command("export-human")
def evaluate_export_human(
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
    max_pairs: Annotated[Optional[int], typer.Option(help="Export only the first N pairs.")] = None,
) -> None:
    """Export the last evaluation's pairs for human raters: Label Studio tasks + configs, rating pages."""
    from photogenic.evaluation.human import export_human

    cfg = existing_config(config, set_)
    export = export_human(_evaluation_folder(cfg), seed=cfg.evaluate.seed, max_pairs=max_pairs)
    typer.echo(f"{export.pairs} pairs (export {export.export_id}) -> {export.folder}: tasks.json, "
               "visual_appeal.xml, text_faithfulness.xml, rate_visual_appeal.html, rate_text_faithfulness.html")


@app.command("import-human")
def evaluate_import_human(
    files: Annotated[list[Path], typer.Argument(help="Label Studio JSON exports and/or rating-page downloads.")],
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
) -> None:
    """Import raters' votes, take the majority per pair, and print the human win rates."""
    from photogenic.evaluation.human import record_human_results

    cfg = existing_config(config, set_)
    human = record_human_results(_evaluation_folder(cfg), [str(f) for f in files], n_boot=cfg.evaluate.bootstrap,
                                 level=cfg.evaluate.level, seed=cfg.evaluate.seed)
    for row in human["win_rates"]:
        typer.echo(f"{row['judge']} [{row['category']}]: win rate {row['win_rate']:.3f} "
                   f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}] n={row['n']} p={row['p_value']:.3g}")


@app.command("promote")
def evaluate_promote(
    config: ConfigOption = Path("params.yaml"),
    set_: SetOption = None,
    version: Annotated[Optional[str], typer.Option(help="Candidate version (default: from the evaluation).")] = None,
) -> None:
    """Apply the promotion gate to the last evaluation's results."""
    from photogenic.evaluation.promotion import promote
    from photogenic.evaluation.results import read_results

    cfg = existing_config(config, set_)
    decision = promote(read_results(_evaluation_folder(cfg)), cfg.evaluate.promotion, candidate_version=version)
    verdict = "PROMOTED to @" + decision.alias if decision.promoted else "refused"
    typer.echo(f"{decision.registered_model} v{decision.version}: {verdict}: {decision.reason}")


@app.command("ablation")
def evaluate_ablation(
    config: ConfigOption = Path("configs/default.yaml"),
    set_: SetOption = None,
    size: Annotated[Optional[list[int]], typer.Option(help="Curated-set sizes to tune on besides all of it "
                                                       "(repeat; default 25, 50, 100).")] = None,
    guidance: Annotated[Optional[list[float]], typer.Option(help="Guidance scales to compare at besides "
                                                            "evaluate.sampling.guidance_scale (repeat; default 4).")] = None,
    quiet: QuietOption = False,
) -> None:
    """Emu's ablations: quality-tune the pretrained model on the curated set, as many random ingested rows,
    as many auto-filter candidates, and smaller curated sets; compare each with the pretrained model (at two
    guidance scales for the curated arm) and the curated arm with the others; a report page and MLflow runs."""
    from photogenic.evaluation.ablation import run_ablation

    cfg = existing_config(config, set_)
    summary = run_ablation(cfg, sizes=tuple(size or (25, 50, 100)), guidance_scales=tuple(guidance or (4.0,)),
                           seed=cfg.evaluate.seed, progress=not quiet)
    for c in summary["comparisons"]:
        for criterion, row in c["headline"].items():
            typer.echo(f"{c['candidate']} vs {c['baseline']} (guidance {c['guidance_scale']:g}) {criterion} by "
                       f"{row['judge']}: win rate {row['win_rate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]")
    typer.echo(f"report: {summary['folder']}/report.html")
