"""The runners (dvc.yaml, the ZenML pipelines, the KFP pipeline) stay in step with the stage
declarations; and the drift checks themselves catch what they are meant to."""

import copy
import importlib
import inspect
from pathlib import Path

import yaml

from photogenic.stages.registry import STAGES
from tests.runners import drift

REPO = Path(__file__).resolve().parents[2]


def _dvc_yaml():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_registry_declarations_name_real_config_keys():
    assert drift.check_registry() == []


def test_dvc_yaml_matches_the_registry():
    assert drift.check_dvc_yaml(_dvc_yaml()) == []


def test_dvc_yaml_check_catches_drift():
    dvc = _dvc_yaml()
    missing = copy.deepcopy(dvc)
    del missing["stages"]["auto_filter"]
    assert drift.check_dvc_yaml(missing) == ["dvc.yaml: stage auto_filter is missing"]

    undeclared = copy.deepcopy(dvc)
    undeclared["stages"]["ingest"]["outs"].append("${data.root}/datasets/extra")
    assert any("output ${data.root}/datasets/extra is not declared" in p for p in drift.check_dvc_yaml(undeclared))

    unknown = copy.deepcopy(dvc)
    unknown["stages"]["ingest"]["params"].append("ingestion")
    problems = drift.check_dvc_yaml(unknown)
    assert any("'ingestion' is unknown to the config" in p for p in problems)

    stray = copy.deepcopy(dvc)
    stray["stages"]["caption_old"] = {"cmd": "photogenic step caption_old"}
    assert "dvc.yaml: stage caption_old is not declared in the registry" in drift.check_dvc_yaml(stray)


def _zenml_invocations(pipeline, config):

    pipeline.prepare(config=config, progress=False)
    found = {}
    for invocation_id, invocation in pipeline.invocations.items():
        step = invocation.step
        module = importlib.import_module(type(step).__module__ if type(step).__module__ != "zenml.steps.decorated_step"
                                         else step.source_object.__module__)
        resources = step.configuration.settings.get("resources")
        found[invocation_id] = {
            "step": step.name,
            "parameters": dict(invocation.parameters),
            "inputs": list(invocation.input_artifacts),
            "spec": getattr(getattr(module, "SPEC", None), "name", None),
            "gpu_count": resources.gpu_count if resources is not None else None,
            # the step's own code calls ensure_dataset on its inputs, or the shared step helper that does
            "restores_inputs": _restores(inspect.getsource(module)),
        }
    return found


def _restores(source: str) -> bool:
    import steps.stage_step

    helper = "ensure_dataset(" in inspect.getsource(steps.stage_step)
    return "ensure_dataset(" in source or ("run_dataset_stage(" in source and helper)


def test_zenml_pipelines_match_the_registry(tmp_path):
    from photogenic.config import load_config
    from pipelines.run import PIPELINES

    config = load_config(None, [f"data.root={tmp_path}"]).resolved()
    union = {}
    for name, pipeline in PIPELINES.items():
        invocations = _zenml_invocations(pipeline, config)
        problems = drift.check_zenml_invocations(invocations, required=set())
        assert problems == [], name
        union.update({f"{name}:{k}": v for k, v in invocations.items()})
    # every declared stage runs in some pipeline
    assert drift.check_zenml_invocations(union) == []


def test_zenml_check_catches_drift(tmp_path):
    from photogenic.config import load_config
    from pipelines.data_curation import data_curation

    config = load_config(None, [f"data.root={tmp_path}"]).resolved()
    invocations = _zenml_invocations(data_curation, config)
    assert {"ingest", "auto_filter"} <= {info["spec"] for info in invocations.values()}
    in_pipeline = {info["spec"] for info in invocations.values() if info["spec"]}
    fewer = {k: v for k, v in invocations.items() if k != "auto_filter"}
    assert drift.check_zenml_invocations(fewer, required=in_pipeline) == [
        "ZenML: stage auto_filter has no step in the pipeline"]

    whole_config = copy.deepcopy(invocations)
    whole_config["auto_filter"]["parameters"]["config"] = config
    assert any("gets config sections" in p for p in drift.check_zenml_invocations(whole_config))

    no_gate = {k: v for k, v in invocations.items() if k != "gate_ingest"}
    assert drift.check_zenml_invocations(no_gate, required=in_pipeline) == [
        "ZenML: stage ingest has no quality_gate step"]

    lazy = copy.deepcopy(invocations)
    lazy["auto_filter"]["restores_inputs"] = False
    assert any("does not restore its input datasets" in p
               for p in drift.check_zenml_invocations(lazy, required=in_pipeline))

    gpu = copy.deepcopy(invocations)
    gpu["ingest"]["gpu_count"] = 1
    assert any("requests 1 GPUs" in p for p in drift.check_zenml_invocations(gpu, required=in_pipeline))
    no_md5s = copy.deepcopy(invocations)
    del no_md5s["curation"]["parameters"]["external_md5s"]
    assert drift.check_zenml_invocations(no_md5s, required=in_pipeline) == [
        "ZenML: step curation does not key its cache on its external inputs' md5s"]
    # the data chain runs every dataset stage that has a dvc.yaml stage; the emu pipeline every stage
    assert {name for name, spec in STAGES.items() if spec.dvc_stage and not spec.model_outputs} <= {
        info["step"] for info in invocations.values()}
    from pipelines.emu import emu

    assert set(STAGES) <= {info["step"] for info in _zenml_invocations(emu, config).values()}


def test_stages_without_a_dvc_stage_are_declared_so():
    from dataclasses import replace

    # evaluate reads models no declared stage writes yet; promote reads evaluate's results
    assert {name for name, spec in STAGES.items() if not spec.dvc_stage} == {"evaluate", "promote"}
    dvc = _dvc_yaml()
    dvc["stages"]["evaluate"] = {"cmd": "photogenic step evaluate --config params.yaml", "params": ["data", "evaluate"]}
    assert drift.check_dvc_yaml(dvc) == [
        "dvc.yaml: stage evaluate is declared without a dvc.yaml stage (dvc_stage=False) but dvc.yaml has one"]
    # the flag is no way out of the check for a stage that could have one
    stages = dict(STAGES, caption=replace(STAGES["caption"], dvc_stage=False))
    assert drift.check_registry(stages) == [
        "stage caption: declared without a dvc.yaml stage, yet it reads neither models (model_inputs) nor a "
        "dataset of a stage without one"]
    stages = dict(STAGES, evaluate=replace(STAGES["evaluate"], model_inputs=("evaluate.nothing",)))
    assert drift.check_registry(stages) == ["stage evaluate: model key 'evaluate.nothing' is not a key of the config"]


def test_stage_params_cover_the_sections_their_code_reads():
    # caption's gate re-checks the curation quotas; package compares with upsample.min_short_side;
    # evaluate sizes its shards as ingest does
    assert "curation" in STAGES["caption"].params
    assert "upsample" in STAGES["package"].params
    assert "ingest" in STAGES["evaluate"].params


def test_kfp_pipeline_matches_the_registry(tmp_path):
    from photogenic.config import load_config
    from photogenic.kfp.pipeline import compile_pipeline

    config = load_config(None)
    path = tmp_path / "p.yaml"
    compile_pipeline(config, str(path))
    ir = next(yaml.safe_load_all(path.read_text()))
    assert drift.check_kfp_ir(ir, config) == []

    def dag_holding(ir, task_name):
        # the stages run inside the sub-DAG of the "inputs changed" condition
        dags = [ir["root"]["dag"]] + [c["dag"] for c in ir["components"].values() if "dag" in c]
        return next(dag for dag in dags if task_name in dag["tasks"])

    fewer = copy.deepcopy(ir)
    del dag_holding(fewer, "auto-filter")["tasks"]["auto-filter"]
    assert drift.check_kfp_ir(fewer, config) == ["KFP: stage auto_filter has no task"]
    unordered = copy.deepcopy(ir)
    dag_holding(unordered, "auto-filter")["tasks"]["auto-filter"]["dependentTasks"] = []
    assert any("follows []" in p for p in drift.check_kfp_ir(unordered, config))
    gpu = copy.deepcopy(ir)
    executor = gpu["components"]["comp-ingest"]["executorLabel"]
    gpu["deploymentSpec"]["executors"][executor]["container"]["resources"]["accelerator"] = {"resourceCount": "1"}
    assert drift.check_kfp_ir(gpu, config) == ["KFP: task ingest requests 1 GPUs, the stage declares 0"]
