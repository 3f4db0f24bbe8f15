#!/usr/bin/env bash
# Register the ZenML stack that runs `photogenic run` on a Kubeflow cluster, and point DVC at the
# same object store. Run once per workstation/CI runner, from the project folder, with the
# variables below set in the environment. Credentials are read from the environment into ZenML
# secrets and DVC's *local* (git-ignored) config: nothing secret lands in a tracked file.
#
# Needs: a ZenML server (the Kubeflow orchestrator refuses a local ZenML store), Kubeflow
# Pipelines >= 2.0, an S3-compatible bucket (AWS S3, MinIO, Ceph...), a container registry the
# cluster can pull from, and an MLflow tracking server.
set -euo pipefail

: "${ZENML_SERVER_URL:?the ZenML server, e.g. https://zenml.example.com}"
: "${KFP_HOST:?the Kubeflow Pipelines API, e.g. https://kubeflow.example.com/pipeline}"
: "${KFP_NAMESPACE:=kubeflow-user-example-com}"
: "${S3_BUCKET:?bucket (and prefix) for artifacts and data, e.g. s3://photogenic}"
: "${S3_ENDPOINT_URL:=}"   # empty for AWS S3; http(s)://minio.example.com for MinIO
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
: "${CONTAINER_REGISTRY:?e.g. registry.example.com/photogenic}"
: "${MLFLOW_TRACKING_URI:?e.g. https://mlflow.example.com}"
: "${MLFLOW_TRACKING_USERNAME:=}" "${MLFLOW_TRACKING_PASSWORD:=}"
STACK=${STACK:-photogenic-kubeflow}

zenml login "$ZENML_SERVER_URL"

# credentials live in ZenML's secret store, referenced by name from the components
zenml secret create photogenic-s3 \
    --aws_access_key_id="$AWS_ACCESS_KEY_ID" --aws_secret_access_key="$AWS_SECRET_ACCESS_KEY" || \
  zenml secret update photogenic-s3 \
    --aws_access_key_id="$AWS_ACCESS_KEY_ID" --aws_secret_access_key="$AWS_SECRET_ACCESS_KEY"
zenml secret create photogenic-mlflow \
    --username="$MLFLOW_TRACKING_USERNAME" --password="$MLFLOW_TRACKING_PASSWORD" || \
  zenml secret update photogenic-mlflow \
    --username="$MLFLOW_TRACKING_USERNAME" --password="$MLFLOW_TRACKING_PASSWORD"

client_kwargs='{}'
[ -n "$S3_ENDPOINT_URL" ] && client_kwargs="{\"endpoint_url\": \"$S3_ENDPOINT_URL\"}"
zenml artifact-store register photogenic-s3 --flavor=s3 --path="$S3_BUCKET/zenml" \
    --authentication_secret=photogenic-s3 --client_kwargs="$client_kwargs"

zenml container-registry register photogenic-registry --flavor=default --uri="$CONTAINER_REGISTRY"
zenml image-builder register photogenic-docker --flavor=local

# GPU steps: ZenML 0.98 requests a GPU only for steps with gpu_count > 0 whose settings carry the
# node selector key "accelerator" (steps/settings.py sets both from the stage declarations)
zenml orchestrator register photogenic-kubeflow --flavor=kubeflow \
    --kubeflow_hostname="$KFP_HOST" --user_namespace="$KFP_NAMESPACE" --synchronous=true

zenml experiment-tracker register photogenic-mlflow --flavor=mlflow \
    --tracking_uri="$MLFLOW_TRACKING_URI" \
    --tracking_username="{{photogenic-mlflow.username}}" --tracking_password="{{photogenic-mlflow.password}}"

zenml stack register "$STACK" -o photogenic-kubeflow -a photogenic-s3 -c photogenic-registry \
    -i photogenic-docker -e photogenic-mlflow --set

# DVC: the datasets go to the same bucket; credentials in .dvc/config.local (git-ignored)
dvc remote add --force --default cluster "$S3_BUCKET/dvc"
[ -n "$S3_ENDPOINT_URL" ] && dvc remote modify cluster endpointurl "$S3_ENDPOINT_URL"
dvc remote modify --local cluster access_key_id "$AWS_ACCESS_KEY_ID"
dvc remote modify --local cluster secret_access_key "$AWS_SECRET_ACCESS_KEY"

echo "Stack $STACK is active. Run: photogenic run --zenml-config infra/zenml/kubeflow-run.yaml"
