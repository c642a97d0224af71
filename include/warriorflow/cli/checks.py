"""The doctor's checks: models and checksums, the DuckDB schema, the object store and the sandbox.
Each check is a small function returning Check rows, with what to fix."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from warriorflow.config import BackendKind, Config
from warriorflow.errors import WarriorflowError, excerpt


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None


def _guard(name: str, fn: Callable[[], Iterable[Check]]) -> list[Check]:
    try:
        return list(fn())
    except WarriorflowError as exc:
        return [Check(name, "fail", f"{exc.what}: {exc.problem}", exc.fix)]
    except Exception as exc:  # a doctor reports, it does not crash
        return [Check(name, "fail", f"{type(exc).__name__}: {excerpt(exc, 500)}",
                      "report this as a bug with the output above")]


def check_experts(config: Config) -> list[Check]:
    from warriorflow.models.locate import resolve_model

    rows: list[Check] = []
    for expert in config.registry.experts:
        name = f"expert {expert.name}"

        def one(expert=expert, name=name) -> Iterable[Check]:
            if expert.model.published is not None:  # the champion: a published model, once one is promoted
                from warriorflow.store.champion import read_champion
                from warriorflow.store.objects import open_objects

                alias = read_champion(open_objects(config))
                if alias is None:
                    yield Check(name, "ok", "no model promoted yet: it joins the battles after the first promotion")
                else:
                    yield Check(name, "ok", f"champion {alias['training_run_id']} ({expert.model.published})")
                return
            resolved = resolve_model(expert.name, expert.model, config.model_cache)
            if expert.backend is BackendKind.openai:
                from warriorflow.inference.openai_http import OpenAIHTTPBackend

                with OpenAIHTTPBackend(expert.name, resolved.endpoint, model=expert.model.served_name,
                                       api_key_env=expert.model.api_key_env, retries=0,
                                       connect_timeout_s=3.0, timeout_s=10.0) as http:
                    served = http.models()
                want = expert.model.served_name or expert.name
                if want not in served:
                    yield Check(name, "fail", f"{resolved.endpoint} serves {served}, not '{want}'",
                                "set model.served_name to one of the served model ids")
                    return
                yield Check(name, "ok", f"endpoint {resolved.endpoint} serves '{want}'")
                return
            checksum = f"sha256 {resolved.sha256[:12]}… verified" if resolved.sha256 else "no sha256 configured"
            detail = f"{resolved.path} ({checksum})"
            if config.chat_template_text(expert) is not None:  # raises, naming the file, when unreadable
                detail += f"; chat template {expert.chat_template.path}"
            elif expert.chat_template.source == "model" and resolved.path is not None and resolved.path.is_file():
                from warriorflow.inference.gguf import read_gguf_chat_template

                info = read_gguf_chat_template(resolved.path)
                if not info.chat_template:
                    yield Check(name, "fail", f"{detail}; the GGUF carries no chat template",
                                "set chat_template.source: file with a .jinja path, or none for a base model")
                    return
                detail += "; chat template found"
            yield Check(name, "ok" if resolved.sha256 else "warn", detail,
                        None if resolved.sha256 else "add model.sha256 so corrupt weights are caught")

        rows.extend(_guard(name, one))
    return rows


def check_rating_store(config: Config, init: bool) -> list[Check]:
    from warriorflow.store.rating_store import RatingStore, load_migrations

    def run() -> Iterable[Check]:
        latest = len(load_migrations())
        path = config.duckdb_path
        if not path.exists() and not init:
            yield Check("rating store", "warn", f"{path} does not exist yet (schema v{latest} on first write)",
                        "run `warriorflow doctor --init` to create it now")
            return
        with RatingStore(path, read_only=not init) as store:
            version = store.schema_version()
        yield Check("rating store", "ok", f"{path} at schema version {version} (latest {latest})")

    return _guard("rating store", run)


def check_object_store(config: Config) -> list[Check]:
    from warriorflow.store.objects import open_objects

    def run() -> Iterable[Check]:
        store = open_objects(config)
        store.check()
        yield Check("object store", "ok", f"{store.uri('')} reachable and writable")

    return _guard("object store", run)


def check_sandbox(config: Config | None = None) -> list[Check]:
    """bwrap works, then each protection the sandbox promises, measured inside it."""
    from warriorflow.sandbox import SandboxError
    from warriorflow.sandbox.probe import probe_bwrap, probe_protections

    ok, detail = probe_bwrap()
    rows = [Check("sandbox", "ok" if ok else "fail", detail,
                  None if ok else "install bubblewrap; generated code never runs outside it")]
    if not ok:
        return rows
    python = config.settings.evaluation.sandbox.python if config is not None else None
    memory_cgroup = config.settings.evaluation.sandbox.memory_cgroup if config is not None else "auto"
    try:
        protections = probe_protections(python, memory_cgroup)
    except SandboxError as exc:
        return [*rows, Check("sandbox: protections", "fail", f"{exc.what}: {exc.problem}", exc.fix)]
    for name, in_force, why in protections:
        if name == "memory bound" and in_force and "no cgroup" in why:
            rows.append(Check(f"sandbox: {name}", "warn", why, "let warriorflow create cgroups (run as root, or a "
                              "delegated cgroup v2 subtree) to bound memory over the whole sandbox"))
            continue
        rows.append(Check(f"sandbox: {name}", "ok" if in_force else "fail", why,
                          None if in_force else "run evaluation only where this protection holds (docs/production.md)"))
    return rows


def run_doctor(config: Config, *, init: bool = False) -> list[Check]:
    checks = [Check("config", "ok", f"{config.settings_file} + {config.experts_file} "
                    f"({len(config.registry.experts)} experts)")]
    checks += check_experts(config)
    checks += check_rating_store(config, init)
    checks += check_object_store(config)
    checks += check_sandbox(config)
    return checks
