"""Summarization settings (Pipecat 1.14's fields, defaults and checks) and message arithmetic."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from callpipe.processors.aggregators.llm_context import LLMContext, LLMSpecificMessage
from callpipe.utils.context.llm_context_summarization import (
    DEFAULT_SUMMARIZATION_PROMPT,
    DEFAULT_SUMMARIZATION_TIMEOUT,
    LLMAutoContextSummarizationConfig,
    LLMContextSummarizationConfig,
    LLMContextSummarizationUtil,
    LLMContextSummaryConfig,
)

util = LLMContextSummarizationUtil


def call(call_id: str, name: str = "lookup") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}
        ],
    }


def result(call_id: str, content: str = '{"ok": true}') -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_summary_config_defaults_and_checks() -> None:
    config = LLMContextSummaryConfig()
    assert config.target_context_tokens == 6000
    assert config.min_messages_after_summary == 4
    assert config.summarization_prompt is None
    assert config.summary_prompt == DEFAULT_SUMMARIZATION_PROMPT
    assert config.summary_message_template == "Conversation summary: {summary}"
    assert config.llm is None
    assert config.summarization_timeout == DEFAULT_SUMMARIZATION_TIMEOUT == 120.0
    assert LLMContextSummaryConfig(summarization_prompt="Be short.").summary_prompt == "Be short."
    with pytest.raises(ValueError):
        LLMContextSummaryConfig(target_context_tokens=0)
    with pytest.raises(ValueError):
        LLMContextSummaryConfig(min_messages_after_summary=-1)
    assert LLMContextSummaryConfig(min_messages_after_summary=0).min_messages_after_summary == 0


def test_auto_config_defaults_and_checks() -> None:
    config = LLMAutoContextSummarizationConfig()
    assert (config.max_context_tokens, config.max_unsummarized_messages) == (8000, 20)
    assert config.summary_config == LLMContextSummaryConfig()
    assert LLMAutoContextSummarizationConfig(max_context_tokens=None).max_context_tokens is None
    with pytest.raises(ValueError):
        LLMAutoContextSummarizationConfig(max_context_tokens=None, max_unsummarized_messages=None)
    with pytest.raises(ValueError):
        LLMAutoContextSummarizationConfig(max_context_tokens=0)
    with pytest.raises(ValueError):
        LLMAutoContextSummarizationConfig(max_unsummarized_messages=0)
    # A summary budget above the context limit is cut to 80 % of the limit.
    small = LLMAutoContextSummarizationConfig(max_context_tokens=1000)
    assert small.summary_config.target_context_tokens == 800
    roomy = LLMAutoContextSummarizationConfig(max_context_tokens=None)
    assert roomy.summary_config.target_context_tokens == 6000


def test_deprecated_flat_config_warns_and_converts() -> None:
    with pytest.warns(DeprecationWarning, match="LLMAutoContextSummarizationConfig"):
        old = LLMContextSummarizationConfig(
            max_context_tokens=2000,
            target_context_tokens=5000,
            max_unsummarized_messages=None,
            min_messages_after_summary=2,
            summarization_prompt="Short.",
            summary_message_template="<s>{summary}</s>",
            summarization_timeout=30.0,
        )
    assert old.target_context_tokens == 1600 and old.summary_prompt == "Short."
    new = old.to_auto_config()
    assert isinstance(new, LLMAutoContextSummarizationConfig)
    assert (new.max_context_tokens, new.max_unsummarized_messages) == (2000, None)
    assert new.summary_config == LLMContextSummaryConfig(
        target_context_tokens=1600,
        min_messages_after_summary=2,
        summarization_prompt="Short.",
        summary_message_template="<s>{summary}</s>",
        summarization_timeout=30.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError):
            LLMContextSummarizationConfig(max_context_tokens=None, max_unsummarized_messages=None)
        with pytest.raises(ValueError):
            LLMContextSummarizationConfig(min_messages_after_summary=-1)


def test_configs_are_importable_where_pipecat_users_import_them() -> None:
    from callpipe.frames.frames import LLMSummarizeContextFrame
    from callpipe.processors.aggregators import llm_response_universal

    assert llm_response_universal.LLMAutoContextSummarizationConfig is (
        LLMAutoContextSummarizationConfig
    )
    assert llm_response_universal.LLMContextSummarizationConfig is LLMContextSummarizationConfig
    assert LLMSummarizeContextFrame(config=LLMContextSummaryConfig()).config is not None


def test_token_estimate_is_about_four_characters_a_token() -> None:
    assert util.estimate_tokens("") == 0
    assert util.estimate_tokens("x" * 41) == 10
    context = LLMContext(
        [
            {"role": "system", "content": "x" * 40},  # 10 + 10
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "y" * 80},  # 20
                    {"type": "image_url", "image_url": {"url": "data:..."}},  # 500
                ],
            },  # + 10
            call("c1", name="a" * 6),  # 10 + (6 + 2) // 4
            result("c1", "z" * 20),  # 10 + 5 + 10 for the call id
            LLMSpecificMessage(llm="google", message={"thought": "x" * 400}),  # skipped
        ]
    )
    assert util.estimate_context_tokens(context) == 20 + 530 + 12 + 25


def test_selection_keeps_leading_system_messages_and_the_latest() -> None:
    messages = [
        {"role": "system", "content": "rules"},
        {"role": "system", "content": "caller: Ann"},
        user("a"),
        {"role": "assistant", "content": "b"},
        {"role": "system", "content": "a later note"},
        user("c"),
        {"role": "assistant", "content": "d"},
    ]
    chosen = util.get_messages_to_summarize(LLMContext(messages), 2)
    assert chosen.messages == messages[2:5] and chosen.last_summarized_index == 4
    assert util.select_messages(messages, 5).last_summarized_index == -1
    assert util.select_messages(messages[:2], 0).messages == []
    assert util.select_messages(messages, 0).last_summarized_index == 6


def test_selection_never_separates_a_tool_call_from_its_result() -> None:
    messages = [user("a"), call("c1"), result("c1"), user("b"), call("c2"), result("c2"), user("c")]
    # Keeping 2 would leave c2's result without its call: stop before the call.
    assert util.select_messages(messages, 2).last_summarized_index == 3
    assert util.select_messages(messages, 1).last_summarized_index == 5
    # Parallel calls: the assistant message is kept until every result is in range.
    parallel = call("p1")
    parallel["tool_calls"] += call("p2")["tool_calls"]
    messages = [user("a"), parallel, result("p1"), result("p2"), user("b")]
    assert util.select_messages(messages, 2).last_summarized_index == 0
    assert util.select_messages(messages, 1).last_summarized_index == 3
    # A call still running (Pipecat's placeholders) is not summarized either.
    for pending in ("IN_PROGRESS", '{"type": "async_tool", "status": "started"}'):
        messages = [user("a"), call("c1"), result("c1", pending), user("b"), user("c")]
        assert util.select_messages(messages, 1).last_summarized_index == 0
    finished = {
        "role": "developer",
        "content": '{"type": "async_tool", "status": "finished", "tool_call_id": "c1"}',
    }
    messages = [user("a"), call("c1"), result("c1", "IN_PROGRESS"), finished, user("b")]
    assert util.select_messages(messages, 1).last_summarized_index == 3


def test_transcript_names_roles_tool_calls_and_results() -> None:
    messages = [
        user("My order is 42."),
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}]},
        call("c1", name="lookup_order"),
        result("c1", '{"status": "shipped"}'),
        LLMSpecificMessage(llm="google", message={"thought": "secret"}),
    ]
    assert util.format_messages_for_summary(messages) == (
        "USER: My order is 42.\n\n"
        "ASSISTANT: Checking.\n\n"
        "TOOL_CALL: lookup_order({})\n\n"
        'TOOL_RESULT[c1]: {"status": "shipped"}'
    )
