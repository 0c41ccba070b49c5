"""LLMContext, tool schemas and service settings: the 1.14 data types on their own."""

from __future__ import annotations

from typing import Literal

import pytest

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import AdapterType, ToolsSchema
from callpipe.adapters.schemas.function_schema import FunctionSchema as OldPathFunctionSchema
from callpipe.processors.aggregators.llm_context import (
    NOT_GIVEN,
    LLMContext,
    LLMSpecificMessage,
    standard_message_text,
)
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.settings import TTSSettings

WEATHER = FunctionSchema(
    name="get_weather",
    description="Weather in a city",
    properties={"city": {"type": "string"}},
    required=["city"],
)


def test_old_module_path_is_the_same_class() -> None:
    assert OldPathFunctionSchema is FunctionSchema


def test_tools_schema_to_openai_with_custom_tools() -> None:
    custom = {"type": "web_search"}
    tools = ToolsSchema([WEATHER], custom_tools={AdapterType.OPENAI: [custom]})
    assert tools.to_openai() == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        },
        custom,
    ]


def test_tools_schema_refuses_other_tool_types() -> None:
    with pytest.raises(TypeError, match="FunctionSchema"):
        ToolsSchema(["not a tool"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="async def"):
        ToolsSchema([lambda params: None])


def test_context_messages_tools_and_choice() -> None:
    context = LLMContext([{"role": "system", "content": "sys"}], tools=[WEATHER])
    assert isinstance(context.tools, ToolsSchema)
    assert context.tool_choice is NOT_GIVEN and context.tool_choice_for_api() is None
    context.add_message({"role": "user", "content": "hi", "interrupted": True})
    context.add_messages([LLMSpecificMessage(llm="google", message={"x": 1})])
    context.add_message(LLMSpecificMessage(llm="openai", message={"role": "user", "content": "o"}))
    # Private keys stripped, other providers' messages left out, ours unwrapped.
    assert context.messages_for_api() == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "o"},
    ]
    assert len(context.get_messages("openai")) == 3
    context.set_tool_choice("required")
    assert context.tool_choice_for_api() == "required"
    context.set_tools(NOT_GIVEN)
    assert context.tools is NOT_GIVEN and context.tools_for_api() is None
    context.transform_messages(lambda msgs: msgs[:1])
    assert context.messages == [{"role": "system", "content": "sys"}]


def test_standard_message_text_joins_text_parts() -> None:
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "a"},
            {"type": "image_url"},
            {"type": "text", "text": "b"},
        ],
    }
    assert standard_message_text(message) == "a b"
    assert standard_message_text(LLMSpecificMessage("x", {})) == ""


def test_old_context_accepts_tools_schema() -> None:
    context = OpenAILLMContext([], tools=ToolsSchema([WEATHER]))
    api_tools = context.tools_for_api()
    assert api_tools is not None and api_tools[0]["function"]["name"] == "get_weather"
    assert context.function_schemas() == [WEATHER]


def test_settings_delta_and_aliases() -> None:
    store = TTSSettings(model="m1", voice="alice", language="en")
    changed = store.apply_update(TTSSettings.from_mapping({"voice_id": "bob", "speed": 1.2}))
    assert changed == {"voice": "alice", "speed": NOT_GIVEN}
    assert store.voice == "bob" and store.language == "en" and store.extra == {"speed": 1.2}
    assert TTSSettings(voice="x").given_fields() == {"voice": "x"}


def test_openai_settings_override_constructor_arguments() -> None:
    llm = OpenAILLMService(
        api_key="k",
        params=OpenAILLMService.InputParams(temperature=0.1, seed=3),
        settings=OpenAILLMService.Settings(model="gpt-x", temperature=0.9),
    )
    assert llm.model_name == "gpt-x"
    body = llm.build_request(LLMContext([{"role": "user", "content": "hi"}]))
    assert body["temperature"] == 0.9 and body["seed"] == 3 and body["model"] == "gpt-x"
    assert "tools" not in body


async def get_weather(params: object, city: str, unit: Literal["c", "f"] = "c") -> dict[str, str]:
    """Weather in a city.

    Args:
        city: The city, as the caller
            said it.
        unit: Temperature unit.

    Returns:
        The forecast.
    """
    return {"city": city, "unit": unit}


def test_direct_function_schema_from_signature_and_docstring() -> None:
    tools = ToolsSchema([get_weather])
    [schema] = tools.standard_tools
    assert schema.name == "get_weather" and schema.description == "Weather in a city."
    assert schema.required == ["city"]
    assert schema.properties == {
        "city": {"type": "string", "description": "The city, as the caller said it."},
        "unit": {"type": "string", "enum": ["c", "f"], "description": "Temperature unit."},
    }
    assert len(tools.direct_functions) == 1


def test_direct_function_must_take_params_first() -> None:
    async def bad(city: str) -> None: ...

    with pytest.raises(TypeError, match="params"):
        ToolsSchema([bad])
