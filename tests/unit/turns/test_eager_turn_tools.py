"""Eager end of turn and tool calls: a speculative run whose turn was confirmed before it
reached its tools calls them on the conversation's own context and answers from their results.
It used to be thrown away and the LLM run again from the start, so the caller heard the
reply's opening twice and the tools were only called on the second try."""

from __future__ import annotations

from callpipe.processors.aggregators.llm_context import LLMContext, ProvisionalLLMContext
from callpipe.services.llm_service import FunctionCallParams, ToolCall

from .test_eager_user_turn import Run, ScriptedLLM, eager, predicted, turn_end, turn_start


def booking_llm() -> tuple[ScriptedLLM, list[object]]:
    """A scripted LLM that asks for ``book`` once; returns it and the contexts ``book`` saw."""
    llm = ScriptedLLM(tool_calls=[ToolCall(id="c1", name="book", arguments="{}")])
    seen: list[object] = []

    async def book(params: FunctionCallParams) -> None:
        seen.append(params.context)
        await params.result_callback("booked")

    llm.register_function("book", book)
    return llm, seen


def test_a_confirmed_run_reaching_tools_goes_on_from_their_results() -> None:
    llm, seen = booking_llm()
    # Confirmed 0.2 s in, while the speculative reply still streams; its tools come after.
    run = Run(eager(), llm=llm)(
        [*turn_start(), *predicted("book a table", wait=0.15), *turn_end("Book a table.")]
    )
    # One run answered the turn, the next one the tool's result: the turn was not answered
    # again from the start, so its opening was said once.
    assert llm.runs == ["book a table", "booked"]
    assert run.spoken() == "Sure: book a table Sure: booked"
    assert run.kinds().count("LLMFullResponseStartFrame") == 2
    # The tool ran once, on the conversation's own context, which keeps the call and result.
    assert len(seen) == 1 and seen[0] is run.context
    assert [m["role"] for m in run.context.messages] == [
        "user",
        "assistant",
        "assistant",
        "tool",
        "assistant",
    ]
    assert run.context.messages[0] == {"role": "user", "content": "Book a table."}
    assert run.context.messages[2]["tool_calls"][0]["function"]["name"] == "book"
    assert run.context.messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "booked"}


def test_the_provisional_context_copies_the_conversation_and_points_back_to_it() -> None:
    committed = LLMContext(messages=[{"role": "system", "content": "Be brief."}])
    provisional = ProvisionalLLMContext(committed, "book a table")
    assert provisional.committed is committed
    assert provisional.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "book a table"},
    ]
    assert committed.messages == [{"role": "system", "content": "Be brief."}]
