"""`warriorflow pods render`: every pod a cycle would launch on Kubernetes, as a dry run; `warriorflow pods
configmap`: the ConfigMap those pods mount (settings, registry and the files they refer to).

One entry per (step, model) a cycle runs (a step's shards of one model share its spec; only the input
URI differs), plus mining per expert and training. Each spec is validated against the Kubernetes
schema (kubernetes-validate, strict) and checked to carry no secret value (only references).
"""

from __future__ import annotations

import json
import os

import click

from warriorflow.cli.context import config_of

K8S_VERSION = "1.33"


def render(config, training: bool = False) -> list[dict]:
    """The pods of one mine + battle cycle (and, with ``training``, the retrain DAG's training pod):
    {task, step, models, gpus, tensor_parallel, pool, spec} each."""
    from warriorflow.config import BackendKind
    from warriorflow.inference.factory import tensor_parallel_size
    from warriorflow.stages.cycles import judging_rounds
    from warriorflow.store.keys import job_in_key, mine_key
    from warriorflow.tasks.pods import (
        job_models,
        job_pod,
        job_resources,
        mine_pod,
        pool_for,
        pool_task_suffix,
    )

    base = config.object_store_uri.rstrip("/")
    out = []

    def entry(task: str, step: str, model: str, resources, spec: dict) -> dict:
        tp = None
        if step != "embed" and model in config.registry.names():
            expert = config.registry.get(model)
            tp = tensor_parallel_size(expert, config) if expert.backend is BackendKind.vllm else None
        return {"task": task, "step": step, "models": [model], "gpus": resources.gpus, "tensor_parallel": tp,
                "pool": pool_for(resources), "spec": spec}

    for e in config.registry.with_role("mine"):
        r = job_resources(config, "mine", e.name)
        out.append(entry("mine", "mine", e.name, r, mine_pod(config, e.name, "RUN")))
        out[-1]["input"] = f"{base}/{mine_key('RUN', e.name)}"
    steps = [("score_jobs", "score"), ("embed", "embed"), ("tag_jobs", "tag"), ("respond", "respond"),
             ("execute", "execute")]
    steps += [(f"judge_r{k}", "judge") for k in range(1, judging_rounds(config) + 1)]
    for task_id, step in steps:
        if step == "tag" and not config.settings.tagging.enabled:
            continue
        for model in job_models(config, step):
            r = job_resources(config, step, model)
            name = f"{step}-{model}-s0000"
            spec = job_pod(config, f"{base}/{job_in_key('RUN', step, name)}", step, model, name)
            out.append(entry(f"{task_id}_{pool_task_suffix(pool_for(r))}", step, model, r, spec))
    if training:  # data parallel (DeepSpeed), not tensor parallel: its GPUs are one training run's
        out.append(training_entry(config))
        out.extend(evaluation_entries(config))
    return out


def evaluation_entries(config) -> list[dict]:
    """The retrain DAG's evaluation jobs: generate on the target's resources (``evaluation.resources``, vLLM's
    tensor parallelism over its GPUs), check in the sandbox on CPUs. Neither runs in the writer pool."""
    from warriorflow.tasks.pods import eval_pod, pool_for

    base = config.object_store_uri.rstrip("/")
    out = []
    for step, resources in (("generate", config.settings.evaluation.resources),
                            ("check", config.settings.kubernetes.cpu_job)):
        spec = eval_pod(config, step, f"{base}/evals/EVAL/request.json", "EVAL")
        out.append({"task": step, "step": f"eval-{step}", "models": ["MODEL" if step == "generate" else "sandbox"],
                    "gpus": resources.gpus, "tensor_parallel": (resources.gpus or None) if step == "generate" else None,
                    "pool": pool_for(resources), "spec": spec,
                    "sandbox_workers": config.settings.evaluation.sandbox.workers if step == "check" else None})
    return out


def training_entry(config) -> dict:
    """The retrain DAG's training pod: its processes (one per GPU under torchrun), the DeepSpeed config as the
    pod sees it (and whether the ConfigMap holds it), the checkpoint volume and the pod task's retries."""
    from warriorflow.config.paths import TRAINING_DIR_ENV
    from warriorflow.tasks.placement import retry_options
    from warriorflow.tasks.pods import (
        CHECKPOINT_MOUNT,
        CONFIG_MOUNT,
        checkpoint_volume,
        config_files,
        config_pod_path,
        pool_for,
        training_pod,
        training_processes,
    )

    t = config.settings.kubernetes.training
    spec = training_pod(config, ["train", "--snapshot", "SNAPSHOT", "--no-record"])
    ds = config.settings.training.deepspeed
    pod_path = config_pod_path(config, ds)
    held = {f"{CONFIG_MOUNT}/{f.path}": f for f in config_files(config)} if config.settings.kubernetes.config_map \
        else {}
    f = held.get(pod_path or "")
    retries = retry_options(config)
    return {"task": "train", "step": "train", "models": [str(config.settings.training.base_model)],
            "gpus": t.gpus, "tensor_parallel": None, "processes": training_processes(t),
            "data_parallel": training_processes(t), "pool": pool_for(t),
            "command": spec["spec"]["containers"][0]["command"],
            "deepspeed": None if not ds else {"setting": ds, "pod_path": pod_path,
                                              "config_map_key": f.key if f else None,
                                              "present": bool(f and f.source.is_file())},
            "checkpoints": {"mount": CHECKPOINT_MOUNT, "env": TRAINING_DIR_ENV, "volume": checkpoint_volume(config)},
            "retries": {"retries": retries["retries"], "exponential_backoff": retries["retry_exponential_backoff"],
                        "first_delay_s": retries["retry_delay"].total_seconds()},
            "spec": spec}


def render_for(config, job_uris, snapshot_id: str | None) -> list[dict]:
    """The pods of real jobs: one per job input URI (step and model read from the input file) and, for
    ``snapshot_id``, the training pod, each with the fields :func:`render` gives."""
    from warriorflow.errors import ConfigError
    from warriorflow.method.jobs import JobInput
    from warriorflow.stages.jobs import job_location
    from warriorflow.tasks.pods import job_pod, job_resources, pool_for, pool_task_suffix, training_pod
    from warriorflow.tasks.retrain import train_args

    out = []
    for uri in job_uris:
        objects, key = job_location(config, uri)
        if not objects.exists(key):
            raise ConfigError(f"job input {uri}", "does not exist in the object store",
                              "pass a URI that `warriorflow plan` or `plan-votes` printed")
        job = JobInput.from_json(objects.get_bytes(key), where=uri)
        r = job_resources(config, job.step, job.model)
        name = key.rsplit("/", 1)[-1].removesuffix(".json")
        task = {"respond": "respond", "judge": f"judge_r{job.round or 1}"}.get(job.step, job.step)
        out.append({"task": f"{task}_{pool_task_suffix(pool_for(r))}", "step": job.step, "models": [job.model],
                    "gpus": r.gpus, "tensor_parallel": None, "pool": pool_for(r), "input": uri,
                    "spec": job_pod(config, uri, job.step, job.model, name)})
    if snapshot_id:
        entry = training_entry(config)
        entry["spec"] = training_pod(config, train_args(snapshot_id))
        entry["command"] = entry["spec"]["spec"]["containers"][0]["command"]
        out.append(entry)
    return out


def problems(config, pods: list[dict]) -> list[str]:
    """Schema errors and secret values found in the rendered pods."""
    import kubernetes_validate

    found = []
    for p in pods:
        try:
            kubernetes_validate.validate(p["spec"], K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            found.append(f"{p['task']} ({', '.join(p['models'])}): {str(exc).splitlines()[0][:300]}")
    secrets = [os.environ.get(e.model.api_key_env) for e in config.registry.experts if e.model.api_key_env]
    secrets += [os.environ.get(v) for v in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                            "WARRIORFLOW_S3_SECRET_ACCESS_KEY", "WARRIORFLOW_S3_SESSION_TOKEN")]
    for p in pods:
        ds = p.get("deepspeed")
        if ds and ds["config_map_key"] and not ds["present"]:
            found.append(f"{p['task']}: training.deepspeed {ds['setting']} not found, so the ConfigMap cannot hold it")
    text = json.dumps(pods)
    if any(s and len(s) >= 4 and s in text for s in secrets):
        found.append("a secret value is part of a pod spec; pods must use secretKeyRef only")
    return found


@click.group()
def pods() -> None:
    """Kubernetes pods of the flywheel's jobs."""


@pods.command("render")
@click.option("--json", "as_json", is_flag=True, help="Print the pods as JSON (a list).")
@click.option("--training/--no-training", default=True, show_default=True,
              help="Also the retrain DAG's pods: training (torchrun) and the evaluation jobs.")
@click.option("--job", "job_uris", multiple=True, metavar="URI",
              help="Instead: the pod of each of these job inputs (what `plan` / `plan-votes` printed), exactly as "
                   "the battle DAG's pod tasks submit it. Repeatable.")
@click.option("--snapshot", "snapshot_id", metavar="ID",
              help="Instead (or with --job): the training pod for this snapshot, as the retrain DAG submits it.")
@click.pass_context
def render_cmd(ctx: click.Context, as_json: bool, training: bool, job_uris: tuple[str, ...],
               snapshot_id: str | None) -> None:
    """Print every pod a mine + battle cycle would launch (dry run, validated against the Kubernetes schema):
    per pod its Airflow task, step, models, GPUs, tensor parallelism and Airflow pool, and the spec. One
    entry per (step, model): a model's shards share its spec. With --job / --snapshot: the pods of those real
    jobs instead. Exits 1 when a spec is invalid or carries a secret value."""
    config = config_of(ctx)
    rendered = render_for(config, job_uris, snapshot_id) if job_uris or snapshot_id else render(config, training)
    bad = problems(config, rendered)
    if as_json:
        click.echo(json.dumps(rendered, indent=1, sort_keys=True))
    else:
        click.echo(f"{'task':<28} {'step':<8} {'model':<34} {'gpus':>4} {'tp':>3}  pool")
        for p in rendered:
            click.echo(f"{p['task']:<28} {p['step']:<8} {p['models'][0][:34]:<34} {p['gpus']:>4} "
                       f"{p['tensor_parallel'] or '-':>3}  {p['pool']}")
        answerers = len(config.registry.with_role("answer"))
        judges = len(config.registry.with_role("judge"))
        click.echo(f"model loads per battle cycle: (answerers {answerers} + judges {judges}) x shards per model "
                   "(jobs.respond_items, jobs.judge_items); every pod loads one model")
        pools = sorted({p["pool"] for p in rendered})
        click.echo("airflow pools to create: " + ", ".join(
            f"{p} ({config.settings.kubernetes.pools.get(p.removeprefix('warriorflow_pool_'), 'set its slots')})"
            for p in pools))
    for line in bad:
        click.echo(click.style("invalid: ", fg="red") + line, err=True)
    if bad:
        ctx.exit(1)


@pods.command("configmap")
@click.option("--json", "fmt", flag_value="json", help="Print it as JSON.")
@click.option("--yaml", "fmt", flag_value="yaml", default=True, help="Print it as YAML (the default).")
@click.option("--namespace", default=None, help="Its namespace (default: kubernetes.namespace, where the pods run; "
              "the Airflow release's namespace for the copy its containers mount).")
@click.pass_context
def configmap_cmd(ctx: click.Context, fmt: str, namespace: str | None) -> None:
    """Print the ConfigMap every pod mounts at /etc/warriorflow (``kubernetes.config_map``): the settings file,
    the experts registry and every file they refer to by a relative path (training.deepspeed,
    training.chat_template, experts' chat templates), each under a flattened key and projected back to its
    relative path by the pods. Apply it with: warriorflow pods configmap | kubectl apply -f -"""
    from warriorflow.tasks.pods import config_files, config_map

    config = config_of(ctx)
    manifest = config_map(config)
    if namespace:
        manifest["metadata"]["namespace"] = namespace
    if fmt == "json":
        click.echo(json.dumps(manifest, indent=1, sort_keys=True))
    else:
        import yaml

        class Dumper(yaml.SafeDumper):  # the files as readable blocks (|), not one escaped line each
            pass

        Dumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v,
                                                                     style="|" if "\n" in v else None))
        click.echo(yaml.dump(manifest, Dumper=Dumper, sort_keys=False, width=120), nl=False)
    for f in config_files(config):
        click.echo(f"{f.key} -> /etc/warriorflow/{f.path} ({f.setting})", err=True)
