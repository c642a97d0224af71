"""Build the backend an expert's config asks for."""

from __future__ import annotations

import contextlib

from warriorflow.config import BackendKind, Config, Expert
from warriorflow.errors import ConfigError
from warriorflow.inference.base import Backend
from warriorflow.models.locate import resolve_model


def backend_for(expert: Expert, config: Config) -> Backend:
    """Resolve the expert's weights and open its backend (models load once per process)."""
    resolved = resolve_model(expert.name, expert.model, config.model_cache)
    inf = config.settings.inference
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
        from warriorflow.inference.vllm_offline import VLLMBackend

        model_dir = resolved.path
        if model_dir is not None and model_dir.is_file():  # GGUF weights: vLLM wants safetensors
            from warriorflow.models.dequantize import dequantize_gguf_to_hf

            model_dir = dequantize_gguf_to_hf(model_dir, config.model_cache / f"{expert.name}-hf")
        v = inf.vllm
        return VLLMBackend(expert.name, str(model_dir), dtype=v.dtype, max_model_len=v.max_model_len,
                           gpu_memory_utilization=v.gpu_memory_utilization,
                           tensor_parallel_size=tensor_parallel_size(expert, config), enforce_eager=v.enforce_eager)
    raise ConfigError(f"expert '{expert.name}'", f"unknown backend {expert.backend}",
                      "use llamacpp, openai or vllm")


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
