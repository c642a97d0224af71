"""The prompt an expert mines instructions from.

* A chat expert gets the Magpie pre-query prefix of its own chat template: our system turn, then
  the opening of a user turn and nothing after. Whatever it writes next is a user instruction.
* A completion-only (base) expert gets a few-shot prompt of example questions ending in an open
  ``Question:`` line.

Both carry the stop strings that end the instruction and the sha256 of the exact prompt text, which
every mined record keeps as provenance.
"""

from __future__ import annotations

from pathlib import Path

from warriorflow.config import Config, Expert
from warriorflow.errors import ConfigError
from warriorflow.method.mining import FEW_SHOT_STOPS, MiningPrompt
from warriorflow.method.prompts import PromptTemplate

MINING_PROMPT = PromptTemplate("mining prompt", (), ("language", "topic"))


def render_prompt_file(config: Config, name: str) -> str:
    path = config.prompt_path(name)
    if not path.is_file():
        raise ConfigError(str(path), "prompt file not found", "add it to include/prompts/ or fix the setting")
    m = config.settings.mining
    return MINING_PROMPT.text(path.read_text(encoding="utf-8"), language=m.language, topic=m.topic)


def system_turn(config: Config) -> str:
    return render_prompt_file(config, config.settings.mining.system_prompt).strip()


def mining_prompt(expert: Expert, config: Config, model_path: Path | None) -> MiningPrompt:
    """Build the mining prompt for ``expert`` (``model_path``: its resolved GGUF, for the template)."""
    if expert.mining_mode == "few_shot":
        text = render_prompt_file(config, expert.few_shot_prompt).rstrip("\n") + " "
        return MiningPrompt(expert.name, "few_shot", text, FEW_SHOT_STOPS)

    from warriorflow.inference.gguf import read_gguf_chat_template
    from warriorflow.method.magpie import end_of_turn_stops, magpie_prefix, magpie_prefix_for

    template = config.chat_template_text(expert)
    if template is not None:
        prefix = magpie_prefix(template, system=system_turn(config), source=expert.chat_template.path)
        return MiningPrompt(expert.name, "chat_template", prefix.text, ())
    if model_path is None or not model_path.is_file():
        raise ConfigError(f"expert '{expert.name}'", "chat_template.source is 'model' but the model is not a "
                          "local GGUF", "set chat_template.source: file with the served model's template")
    info = read_gguf_chat_template(model_path)
    prefix = magpie_prefix_for(info, system=system_turn(config))
    return MiningPrompt(expert.name, "chat_template", prefix.text, tuple(end_of_turn_stops(info)))
