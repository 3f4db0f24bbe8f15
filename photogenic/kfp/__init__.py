"""The recipe as a native Kubeflow Pipelines (v2) pipeline: one component per declared stage,
running the project's image, compiled, uploaded and scheduled by ``photogenic kfp``.

No ZenML here: KFP runs ``photogenic.kfp.task`` in each step's container, which pulls the
stage's inputs from the DVC remote, runs the stage and its quality gate, and pushes its output.
"""
