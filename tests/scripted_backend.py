"""Deterministic scripted backends for battle-batch tests and benchmarks (no models).

Every output depends only on the backend's name, its style and the prompt, so a batch run twice (or
killed and resumed) sees the same outputs. Responses say who wrote them (``answer by <expert>``),
which lets a judge with a favourite find it in either position.

Run as a module it is the subprocess of the kill -9 test::

    python -m tests.scripted_backend BATCH_JSON OUT_JSONL CHECKPOINT_DIR TEMPLATE_FILE DELAY_S

It prints ``ready`` once imported, ``step <progress message>`` before each batched call (flushed),
and writes the output records atomically to OUT_JSONL.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Sequence

from warriorflow.inference.base import Generation, per_item

JUDGE_OUTPUTS = (
    "[[A]]", "[[B]]", "[[Tie]]", "Response A is clearer. [[A]]", "B is shorter and correct.\n[[b]]",
    "[[ Tie ]]", "Both fine. Maybe [[A]] or [[B]]", "I cannot decide.",
)


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).digest()[:8], "big")


def _section(prompt: str, label: str) -> str:
    m = re.search(rf"\[Response {label}\]\n(.*?)\n\[End of Response {label}\]", prompt, re.DOTALL)
    return m.group(1) if m else ""


class ScriptedBackend:
    """A fake Backend. ``style`` picks how it judges:

    * ``hash``: a verdict (sometimes free text, ambiguous or missing) drawn from a hash of the prompt;
    * ``always:<text>``: always outputs ``<text>`` (e.g. ``always:[[A]]``, a pure position bias);
    * ``favour:<expert>``: votes for the response written by ``<expert>``, else for the other one
      (``oppose:<expert>`` the reverse); ``[[Tie]]`` if it cannot tell.
    """

    def __init__(self, name: str, style: str = "hash", delay: float = 0.0, per_item_delay: float = 0.0):
        self.name, self.style = name, style
        self.delay, self.per_item_delay = delay, per_item_delay
        self.calls: list[tuple[list, object]] = []
        self.closed = False

    def complete(self, prompts: Sequence[str], sampling) -> list[Generation]:
        raise NotImplementedError("battle batches only chat")

    def chat(self, conversations, sampling) -> list[Generation]:
        conversations = list(conversations)
        samplings = per_item(sampling, len(conversations))
        self.calls.append((conversations, sampling))
        time.sleep(self.delay + self.per_item_delay * len(conversations))
        out = []
        for conv, s in zip(conversations, samplings):
            prompt = conv[-1]["content"]
            if s.choices:
                out.append(Generation(self._judge(prompt), "stop", len(prompt) // 4, 3))
            else:
                n = 1 + _h(self.name, prompt, str(s.seed)) % 5
                words = " ".join(f"w{_h(self.name, prompt, str(i)) % 97}" for i in range(n))
                text = f"answer by {self.name}: {words} {{braces}} [[A]]"
                out.append(Generation(text, "stop", len(prompt) // 4, n + 6))
        return out

    def _judge(self, prompt: str) -> str:
        kind, _, arg = self.style.partition(":")
        if kind == "always":
            return arg
        if kind in ("favour", "oppose"):
            a, b = _section(prompt, "A"), _section(prompt, "B")
            mark = f"answer by {arg}:"
            a_has, b_has = a.startswith(mark), b.startswith(mark)
            if a_has == b_has:
                return "[[Tie]]"
            return "[[A]]" if a_has == (kind == "favour") else "[[B]]"
        return JUDGE_OUTPUTS[_h(self.name, prompt) % len(JUDGE_OUTPUTS)]

    def close(self) -> None:
        self.closed = True


def backends_for(names, styles: dict | None = None, **kw) -> dict[str, ScriptedBackend]:
    styles = styles or {}
    return {n: ScriptedBackend(n, styles.get(n, "hash"), **kw) for n in names}


def main(argv: list[str]) -> int:
    from pathlib import Path

    from warriorflow.method.battle_batch import BattleBatchInput
    from warriorflow.stages.battle import run_battle_batch
    from warriorflow.store.jsonl import encode_jsonl as records_to_jsonl
    from warriorflow.store.objects import LocalObjectStore

    batch_file, out_file, ckpt_dir, template_file, delay = argv
    batch = BattleBatchInput.from_json(Path(batch_file).read_bytes())
    backends = backends_for(batch.experts(), delay=float(delay))
    print("ready", flush=True)
    records = run_battle_batch(batch, backends, Path(ckpt_dir), Path(template_file).read_text(),
                               progress=lambda message: print("step", message, flush=True))
    out = Path(out_file).resolve()
    LocalObjectStore(out.parent).put_bytes(out.name, records_to_jsonl(records))
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
