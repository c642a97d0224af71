"""A small transformers backend for a Hugging Face model directory on CPU: trained runs and the base model in
evaluation jobs, and a ``backend: transformers`` expert (the embedded champion in the arena). vLLM does this
on GPUs in production.

Greedy or sampled, batched with left padding, the tokenizer's chat template applied. Items of one call that
ask for different sampling are generated in separate batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from warriorflow.errors import ModelError
from warriorflow.inference.base import Conversation, Generation, SamplingArg, per_item


class TransformersBackend:
    def __init__(self, name: str, model_dir: str | Path, *, batch_size: int = 8, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise ModelError(f"model '{name}'", f"{path} is not a Hugging Face model directory (no config.json)",
                             "point at a directory with config.json, *.safetensors and tokenizer files")
        if threads:
            torch.set_num_threads(threads)
        self.name = name
        self.batch_size = batch_size
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
        self.model.eval()

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingArg) -> list[Generation]:
        if self.tokenizer.chat_template is None:
            raise ModelError(f"model '{self.name}'", "has no chat template", "train it with one, or use complete()")
        prompts = [self.tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True)
                   for c in conversations]
        return self.complete(prompts, sampling)

    def complete(self, prompts: Sequence[str], sampling: SamplingArg) -> list[Generation]:
        items = per_item(sampling, len(prompts))
        out: list[Generation | None] = [None] * len(prompts)
        groups: dict[object, list[int]] = {}
        for i, s in enumerate(items):  # a batch shares its sampling: group the items by theirs
            groups.setdefault(repr(s), []).append(i)
        for index in groups.values():
            for start in range(0, len(index), self.batch_size):
                chunk = index[start:start + self.batch_size]
                for i, g in zip(chunk, self._generate([prompts[i] for i in chunk], items[chunk[0]]), strict=True):
                    out[i] = g
        return out  # type: ignore[return-value]

    def _generate(self, prompts: list[str], s) -> list[Generation]:
        if s.choices or s.top_logprobs:
            raise ModelError(f"model '{self.name}'", "the transformers backend answers free text only (no constrained "
                             "choices, no logprobs)", "give it the answer role only; judges run on llama.cpp or vLLM")
        torch = self._torch
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        kwargs = {"max_new_tokens": s.max_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if s.temperature > 0:
            if s.seed is not None:
                torch.manual_seed(s.seed)
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            gen = self.model.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1]:]
        eos = self.tokenizer.eos_token_id
        results = []
        for row, n_prompt in zip(new, enc["attention_mask"].sum(dim=1).tolist()):
            ids = row.tolist()
            ended = eos in ids if eos is not None else False
            if ended:
                ids = ids[: ids.index(eos)]
            ids = [i for i in ids if i != self.tokenizer.pad_token_id]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            for stop in s.stop:
                if stop in text:
                    text, ended = text[: text.index(stop)], True
            results.append(Generation(text, "stop" if ended else "length", int(n_prompt), len(ids)))
        return results

    def close(self) -> None:
        self.model = None
