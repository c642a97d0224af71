#!/usr/bin/env bash
# The Airflow image's entrypoint, with the official image's rules (the Helm chart relies on them):
# `bash ...`, `sh ...` and `python ...` run as they are (the chart's components run `bash -c "exec airflow ..."`);
# anything else is an airflow subcommand (`scheduler`, `celery worker`, `airflow version` too).
set -euo pipefail
case "${1:-}" in
  bash | sh | python | python3) exec "$@" ;;
  airflow) shift; exec airflow "$@" ;;
  *) exec airflow "$@" ;;
esac
