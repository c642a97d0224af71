"""The one prompt renderer: slots are filled in one pass, braces in a user-edited prompt or in the texts
stay verbatim, and a prompt file lacking a required slot is a clear config error before any model runs."""

from __future__ import annotations

import pytest

from warriorflow.errors import ConfigError
from warriorflow.method import difficulty, judging, prompts, tagging


def test_fill_is_one_pass_and_leaves_other_braces_alone():
    template = 'Rate {instruction} in {language}. Example: {"score": 7} or {{literal}} or {unknown}.'
    out = prompts.fill(template, {"instruction": "{language} {instruction}", "language": "Python"})
    assert out == 'Rate {language} {instruction} in Python. Example: {"score": 7} or {{literal}} or {unknown}.'


def test_every_prompt_kind_renders_a_user_edited_template_with_braces():
    edited = 'Reply as JSON like {"score": 8}.\n{instruction}\n'
    conv = difficulty.judge_prompt(edited, "sort {a, b}", "Python")
    assert conv == [{"role": "user", "content": 'Reply as JSON like {"score": 8}.\nsort {a, b}\n'}]
    judge = "{instruction} {response_a} {response_b} -> [[A]] {not a slot}"
    out = judging.render_judge_prompt(judge, "i", "{response_b}", "b")[0]["content"]
    assert out == "i {response_b} b -> [[A]] {not a slot}"
    tag = "{instruction} {categories} {x}"
    assert tagging.render_prompt(tag, "i", ["a", "b"], "Py")[0]["content"] == "i - a\n- b {x}"


@pytest.mark.parametrize("kind, template", [
    (difficulty.DIFFICULTY_PROMPT, "no slot here"),
    (judging.JUDGE_PROMPT, "{instruction} {response_a}"),
    (tagging.TAGGING_PROMPT, "{instruction}"),
])
def test_a_missing_slot_is_a_config_error_naming_the_prompt(kind, template):
    with pytest.raises(ConfigError, match=kind.name) as err:
        kind.check(template)
    assert "lacks the placeholder" in str(err.value)


def test_an_unknown_slot_value_is_a_programming_error():
    with pytest.raises(ValueError, match="no slot"):
        judging.JUDGE_PROMPT.conversation("{instruction} {response_a} {response_b}", instruction="i",
                                          response_a="a", response_b="b", extra="x")
