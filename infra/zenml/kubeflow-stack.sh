#!/usr/bin/env bash
# Register the ZenML stack that runs `photogenic run` on a Kubeflow cluster, and point DVC at the
# same object store. Run once per workstation/CI runner, from the project folder, with the
# variables below set in the environment. Credentials are read from the environment into ZenML
# secrets (through a file only this user can read, never on a command line, where `ps` shows
# them to every user of the machine); DVC reads the AWS_* variables from the environment when it
# runs. Nothing secret lands in a tracked file or a process list.
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

case "$MLFLOW_TRACKING_URI" in
  *://*:*@*) echo "MLFLOW_TRACKING_URI carries a password; set MLFLOW_TRACKING_USERNAME/PASSWORD instead" >&2
             exit 2 ;;
esac

zenml login "$ZENML_SERVER_URL"

# credentials live in ZenML's secret store, referenced by name from the components; the values
# go through a private file (`--values=@file`), so they never appear on a command line
secrets=$(umask 077 && mktemp -d)
trap 'rm -rf "$secrets"' EXIT
json_string() { python3 -c 'import json, os, sys; print(json.dumps(os.environ.get(sys.argv[1], "")))' "$1"; }
secret() {  # secret NAME KEY=VARIABLE...: create or update ZenML secret NAME from the variables
  local name=$1 file="$secrets/$1.json" sep="" pair
  shift
  ( umask 077
    { printf '{'
      for pair in "$@"; do printf '%s"%s": %s' "$sep" "${pair%%=*}" "$(json_string "${pair#*=}")"; sep=", "; done
      printf '}\n'; } > "$file" )
  zenml secret create "$name" --values="@$file" || zenml secret update "$name" --values="@$file"
}
secret photogenic-s3 aws_access_key_id=AWS_ACCESS_KEY_ID aws_secret_access_key=AWS_SECRET_ACCESS_KEY
secret photogenic-mlflow username=MLFLOW_TRACKING_USERNAME password=MLFLOW_TRACKING_PASSWORD

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

# DVC: the datasets go to the same bucket; DVC's S3 remote takes AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY from the environment of each dvc command (in a pod: from a Kubernetes
# Secret), so no credentials are written to its config
dvc remote add --force --default cluster "$S3_BUCKET/dvc"
if [ -n "$S3_ENDPOINT_URL" ]; then dvc remote modify cluster endpointurl "$S3_ENDPOINT_URL"; fi

echo "Stack $STACK is active. Run: photogenic run --zenml-config infra/zenml/kubeflow-run.yaml"
