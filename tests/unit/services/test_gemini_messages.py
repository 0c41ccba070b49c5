"""Gemini's message conversion: what reaches the model of each OpenAI-style role."""

from __future__ import annotations

from callpipe.services.google._gemini import convert_messages


def test_a_developer_message_reaches_gemini_as_the_user_s_words() -> None:
    # Pipecat 1.14's async tools report progress and late results as developer messages;
    # Gemini has no such role, so they go in as user text rather than being dropped.
    system, contents = convert_messages(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is my order?"},
            {"role": "assistant", "content": "Checking."},
            {"role": "developer", "content": "The order ships Monday."},
        ]
    )
    assert system == {"parts": [{"text": "Be brief."}]}
    assert contents[-1] == {"role": "user", "parts": [{"text": "The order ships Monday."}]}
