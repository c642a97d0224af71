"""Build the backend an expert's config asks for."""

from __future__ import annotations

import contextlib

from warriorflow.config import BackendKind, Config, Expert
from warriorflow.errors import ConfigError
from warriorflow.inference.base import Backend
from warriorflow.models.locate import resolve_model


def backend_for(expert: Expert, config: Config) -> Backend:
    """Resolve the expert's weights and open its backend (models load once per process)."""
    inf = config.settings.inference
    if expert.model.published is not None:  # a published model (the champion): downloaded and checked
        from warriorflow.models.published import fetch_published_model
        from warriorflow.store.objects import open_objects

        model_dir = fetch_published_model(open_objects(config), expert.model.published, config.model_cache)
        return hf_backend(expert, config, model_dir)
    resolved = resolve_model(expert.name, expert.model, config.model_cache)
    if expert.backend is BackendKind.transformers:
        return hf_backend(expert, config, resolved.path)
    if expert.backend is BackendKind.llamacpp:
        from warriorflow.inference.llamacpp import LlamaCppBackend

        ll = inf.llamacpp
        return LlamaCppBackend(expert.name, resolved.path, threads=ll.threads, n_parallel=ll.n_parallel,
                               ctx_per_sequence=ll.ctx_per_sequence, verbosity=ll.verbosity,
                               chat_template=config.chat_template_text(expert))
    if expert.backend is BackendKind.openai:
        from warriorflow.inference.openai_http import OpenAIHTTPBackend

        h = inf.http
        return OpenAIHTTPBackend(expert.name, resolved.endpoint, model=expert.model.served_name,
                                 api_key_env=expert.model.api_key_env, concurrency=h.concurrency,
                                 timeout_s=h.timeout_s, connect_timeout_s=h.connect_timeout_s,
                                 retries=h.retries, backoff_s=h.backoff_s, constraint_style=h.constraint_style)
    if expert.backend is BackendKind.vllm:
        model_dir = resolved.path
        if model_dir is not None and model_dir.is_file():  # GGUF weights: vLLM wants safetensors
            from warriorflow.models.dequantize import dequantize_gguf_to_hf

            model_dir = dequantize_gguf_to_hf(model_dir, config.model_cache / f"{expert.name}-hf")
        return hf_backend(expert, config, model_dir)
    raise ConfigError(f"expert '{expert.name}'", f"unknown backend {expert.backend}",
                      "use llamacpp, openai, vllm or transformers")


def hf_backend(expert: Expert, config: Config, model_dir) -> Backend:
    """A Hugging Face model directory behind the expert's offline backend: vLLM, transformers on CPU, or llama.cpp
    (the directory converted to GGUF with the base model's GGUF as template)."""
    if expert.backend is BackendKind.transformers:
        return transformers_backend(expert.name, model_dir, config)
    if expert.backend is BackendKind.llamacpp:
        return gguf_backend(expert.name, model_dir, config)
    if expert.backend is not BackendKind.vllm:
        raise ConfigError(f"expert '{expert.name}'", f"backend {expert.backend.value} cannot load a model directory",
                          "use backend: vllm or transformers")
    return vllm_backend(expert.name, model_dir, config, tensor_parallel_size(expert, config))


def gguf_backend(name: str, model_dir, config: Config) -> Backend:
    """A trained Hugging Face model on llama.cpp: converted to Q8_0 GGUF once (models.to_gguf), then loaded."""
    from warriorflow.inference.llamacpp import LlamaCppBackend
    from warriorflow.models.to_gguf import converted

    ll = config.settings.inference.llamacpp
    return LlamaCppBackend(name, converted(config, name, model_dir), threads=ll.threads, n_parallel=ll.n_parallel,
                           ctx_per_sequence=ll.ctx_per_sequence, verbosity=ll.verbosity)


def vllm_backend(name: str, model_dir, config: Config, tensor_parallel: int) -> Backend:
    from warriorflow.inference.vllm_offline import VLLMBackend

    v = config.settings.inference.vllm
    return VLLMBackend(name, str(model_dir), dtype=v.dtype, max_model_len=v.max_model_len,
                       gpu_memory_utilization=v.gpu_memory_utilization, tensor_parallel_size=tensor_parallel,
                       enforce_eager=v.enforce_eager)


def transformers_backend(name: str, model_dir, config: Config, batch_size: int | None = None) -> Backend:
    from warriorflow.inference.transformers_local import TransformersBackend

    return TransformersBackend(name, model_dir, batch_size=batch_size or config.settings.evaluation.batch_size,
                               threads=config.settings.inference.llamacpp.threads)


def tensor_parallel_size(expert: Expert, config: Config) -> int:
    """An offline vLLM expert's tensor parallelism: its pod's GPUs (``resources.gpus``), else the setting."""
    return expert.resources.gpus or config.settings.inference.vllm.tensor_parallel_size


class OpenBackends:
    """The one way to open experts' backends and close them: built on first use, once each, by name, and
    all closed on exit (a failing close never hides the work's own error).

        with OpenBackends(config) as backends:
            backends["qwen"].chat(...)
    """

    def __init__(self, config: Config):
        self._config = config
        self._built: dict[str, Backend] = {}

    def get(self, name: str) -> Backend:
        if name not in self._built:
            self._built[name] = backend_for(self._config.registry.get(name), self._config)
        return self._built[name]

    __getitem__ = get

    def close(self) -> None:
        for backend in self._built.values():
            with contextlib.suppress(Exception):
                backend.close()
        self._built.clear()

    def __enter__(self) -> OpenBackends:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
