#!/usr/bin/env bash
# Write a kustomize overlay of infra/k8s with fresh random credentials, for `kubectl apply -k DIR`.
#
#   infra/k8s/overlay.sh DIR [MLFLOW_IMAGE]
#
# DIR must lie outside infra/k8s (kustomize refuses an overlay inside its base) and outside git:
# infra/k8s-cluster/ is ignored by the project's .gitignore. The credentials are written once, to
# DIR/credentials/*.env (mode 600); running the script again keeps them and rewrites only the
# kustomization. MLFLOW_IMAGE is where `make image-mlflow` pushed the MLflow server image
# (default: the base's photogenic-mlflow, which a cluster can pull only from a local image cache).
set -euo pipefail

out=${1:?usage: infra/k8s/overlay.sh DIR [MLFLOW_IMAGE]}
mlflow_image=${2:-}
base=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/credentials"
out=$(cd "$out" && pwd)
case "$out/" in
  "$base"/*) echo "overlay.sh: $out is inside $base; kustomize refuses an overlay inside its base" >&2; exit 2 ;;
esac

random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

umask 077
write_once() {  # FILE CONTENT: never overwrite credentials a cluster may already use
  if [[ -e $1 ]]; then echo "kept $1"; else printf '%s\n' "$2" > "$1"; echo "wrote $1"; fi
}
key=$(random)
write_once "$out/credentials/s3.env" "AWS_ACCESS_KEY_ID=photogenic-${key:0:16}
AWS_SECRET_ACCESS_KEY=$(random)"
write_once "$out/credentials/postgres.env" "POSTGRES_PASSWORD=$(random)"
write_once "$out/credentials/labelstudio.env" "LABEL_STUDIO_USERNAME=curator@example.com
LABEL_STUDIO_PASSWORD=$(random)"

relative=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$base" "$out")
{
  cat <<YAML
# Written by infra/k8s/overlay.sh: infra/k8s with this folder's credentials. Keep it out of git.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $relative
generatorOptions:
  disableNameSuffixHash: true
secretGenerator:
  - {name: photogenic-s3, namespace: photogenic, behavior: replace, envs: [credentials/s3.env]}
  - {name: photogenic-s3, namespace: kubeflow, behavior: replace, envs: [credentials/s3.env]}
  - {name: photogenic-postgres, namespace: photogenic, behavior: replace, envs: [credentials/postgres.env]}
  - {name: photogenic-labelstudio, namespace: photogenic, behavior: replace, envs: [credentials/labelstudio.env]}
YAML
  if [[ -n $mlflow_image ]]; then
    printf 'images:\n  - name: photogenic-mlflow\n    newName: %s\n' "${mlflow_image%:*}"
    [[ $mlflow_image == *:* ]] && printf '    newTag: "%s"\n' "${mlflow_image##*:}"
  fi
} > "$out/kustomization.yaml"
echo "wrote $out/kustomization.yaml: kubectl apply -k $out"
