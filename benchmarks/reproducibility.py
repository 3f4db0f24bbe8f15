"""Do the two runners make the same datasets? The data stages run through `dvc repro` and through
the ZenML pipeline (`photogenic run`) in a throwaway copy of the project on a small sample pool,
and DVC's md5 of every dataset the stages write is compared.

The stages come from the registry (photogenic.stages.registry), so a stage added there is
covered without touching this file. ``repro_md5_match`` is the share of datasets made by both
runners whose md5s agree; ``repro_stage_coverage`` the share of registered stages whose dataset
both runners made (a stage that is in dvc.yaml but not yet in the pipeline, or whose input no
registered stage makes, lowers it, and is named). Stages that write no dataset (pretrain,
quality_tune: models) and those without a dvc.yaml stage (``dvc_stage=False``: evaluate and
promote, which judge models) are listed and left out; the ZenML side runs the ``data_curation``
pipeline.

    python benchmarks/reproducibility.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import result, run_benchmark  # noqa: E402

COPIED = ("dvc.yaml", ".dvcignore", "configs", "photogenic", "steps", "pipelines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 60-sample pool instead of 300")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project and print where")
    args = parser.parse_args()

    from photogenic.config import load_config
    from photogenic.stages.registry import STAGES
    from photogenic.versioning.dvc import read_lock, write_params

    n = 60 if args.quick else 300
    tmp = Path(tempfile.mkdtemp(prefix="photogenic-repro-"))
    project = tmp / "project"
    env = _environment(project, tmp)
    try:
        _make_project(project, tmp, env)
        overrides = [f"sample_pool.n={n}", "sample_pool.shard_size=100", "ingest.workers=1", "filter.workers=1"]
        config = load_config(project / "configs" / "default.yaml", overrides)
        write_params(project, config.resolved())
        # the stages that write datasets: the training stages' models are not compared (and would
        # make this a training benchmark)
        stages = {name: spec for name, spec in STAGES.items() if spec.dvc_stage and spec.outputs}
        datasets = {name: f"{config.data.root}/datasets/{dataset}" for name, spec in stages.items()
                    for dataset in spec.dataset_names(config, spec.outputs)}

        # 1. dvc repro, stage by stage (a stage whose input nothing makes fails alone, and is named)
        _run([sys.executable, "-m", "dvc", "repro", "sample_pool"], project, env)
        failed = {}
        for name in stages:
            done = _run([sys.executable, "-m", "dvc", "repro", name], project, env, check=False)
            if done.returncode != 0:
                failed[name] = (done.stderr or done.stdout).strip().splitlines()[-1][:200]
        by_dvc = _locked(read_lock(project), datasets)

        # 2. the ZenML pipeline from scratch: no datasets, no lock entries left from step 1
        shutil.rmtree(project / config.data.root / "datasets", ignore_errors=True)
        (project / "dvc.lock").unlink()
        done = _run([sys.executable, "-m", "photogenic.cli", "run", "--pipeline", "data_curation", "--quiet",
                     "--config", "configs/default.yaml",
                     *[arg for o in overrides for arg in ("--set", o)]], project, env, check=False)
        if done.returncode != 0:
            print(f"the ZenML run failed: {(done.stderr or done.stdout).strip()[-600:]}")
        by_zenml = _locked(read_lock(project), datasets)
    finally:
        if args.keep:
            print(f"project kept at {project}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    both = [name for name in datasets if by_dvc.get(name) and by_zenml.get(name)]
    matched = [name for name in both if by_dvc[name] == by_zenml[name]]
    print(f"pool of {n} samples; {len(STAGES)} registered stages, "
          f"{', '.join(sorted(set(STAGES) - set(datasets))) or 'none'} writing no dataset or without a dvc.yaml stage (not compared)")
    for name, path in datasets.items():
        dvc_md5, zen_md5 = by_dvc.get(name), by_zenml.get(name)
        verdict = ("match" if name in matched else "DIFFER") if name in both else "not made by both"
        why = f" (dvc repro failed: {failed[name]})" if name in failed else (
            " (not in the ZenML pipeline)" if dvc_md5 and not zen_md5 else "")
        print(f"  {name:<12} {path:<32} dvc {dvc_md5 or '-':<38} zenml {zen_md5 or '-':<38} {verdict}{why}")
    result("repro_md5_match", len(matched) / len(both) if both else 0.0, ">=", 1.0)
    result("repro_stage_coverage", len(both) / len(datasets), ">=", 1.0)


def _environment(project: Path, tmp: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(project), "ZENML_CONFIG_PATH": str(project / ".zen-home"),
           "ZENML_ANALYTICS_OPT_IN": "false", "ZENML_LOGGING_VERBOSITY": "ERROR", "DVC_NO_ANALYTICS": "1",
           "DVC_SITE_CACHE_DIR": str(tmp / "dvc-site-cache"), "GX_ANALYTICS_ENABLED": "false",
           "HF_HUB_OFFLINE": "1", "GIT_CONFIG_NOSYSTEM": "1"}
    # dvc.yaml's commands call `photogenic`: this interpreter's scripts first
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _make_project(project: Path, tmp: Path, env: dict[str, str]) -> None:
    project.mkdir(parents=True)
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, project / name)
    for args in (["git", "init", "-q"], ["git", "config", "user.email", "bench@example.invalid"],
                 ["git", "config", "user.name", "bench"], [sys.executable, "-m", "dvc", "init", "-q"],
                 [sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(tmp / "dvc-remote")]):
        _run(args, project, env)


def _run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"`{' '.join(args)}` failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


def _locked(lock: dict, datasets: dict[str, str]) -> dict[str, str]:
    """Stage name -> md5 that dvc.lock records for its dataset (absent when not recorded)."""
    found = {}
    for name, path in datasets.items():
        for out in lock.get("stages", {}).get(name, {}).get("outs", []):
            if os.path.normpath(out["path"]) == os.path.normpath(path):
                found[name] = out.get("md5")
    return found


if __name__ == "__main__":
    run_benchmark(main)
