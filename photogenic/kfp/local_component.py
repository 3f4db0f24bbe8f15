"""The stage task as a lightweight KFP component, for ``kfp.local``'s SubprocessRunner.

KFP serialises this function's source into the pipeline; it imports photogenic at run time
from the environment it runs in (the runner is used without a venv, so that is this one).
"""

from kfp import dsl


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def photogenic_stage(
    stage: str,
    config_file: str,
    source_uris: list,
    dataset_version: str,
    model_checkpoint: str,
    steps: int,
    seed: int,
    overrides: list,
    dvc_remote: str,
    upstream_0: str,
    upstream_1: str,
    upstream_2: str,
    upstream_3: str,
    run_id: str,
    run_name: str,
) -> str:
    from photogenic.kfp.task import run_task

    values = {"config_file": config_file, "source_uris": source_uris, "dataset_version": dataset_version,
              "model_checkpoint": model_checkpoint, "steps": steps, "seed": seed, "overrides": overrides,
              "dvc_remote": dvc_remote}
    return run_task(stage, values, [upstream_0, upstream_1, upstream_2, upstream_3], run_id=run_id, run_name=run_name)
