"""The OpenAI-compatible LLM providers (Groq, Together, ...) against FakeOpenAIServer.

Each provider streams a reply through a pipeline with its defaults; each quirk it has is
checked on the request body the fake received; Azure's URL, query and key header forms.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    Frame,
    LLMMessagesFrame,
    LLMTextFrame,
    LLMThoughtEndFrame,
    LLMThoughtStartFrame,
    LLMThoughtTextFrame,
    LLMUpdateSettingsFrame,
    MetricsFrame,
)
from callpipe.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.settings import LLMSettings
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer

from .helpers import errors, texts


@dataclass(frozen=True)
class Provider:
    module: str
    cls: str
    base_url: str
    model: str
    env: str | None

    def service_class(self) -> type[OpenAILLMService]:
        service: type[OpenAILLMService] = getattr(
            importlib.import_module(f"callpipe.services.{self.module}.llm"), self.cls
        )
        return service


PROVIDERS = [
    Provider(
        "groq",
        "GroqLLMService",
        "https://api.groq.com/openai/v1",
        "openai/gpt-oss-120b",
        "GROQ_API_KEY",
    ),
    Provider(
        "together",
        "TogetherLLMService",
        "https://api.together.xyz/v1",
        "zai-org/GLM-5.2",
        "TOGETHER_API_KEY",
    ),
    Provider(
        "fireworks",
        "FireworksLLMService",
        "https://api.fireworks.ai/inference/v1",
        "accounts/fireworks/models/nemotron-3-ultra-nvfp4",
        "FIREWORKS_API_KEY",
    ),
    Provider(
        "openrouter",
        "OpenRouterLLMService",
        "https://openrouter.ai/api/v1",
        "openai/gpt-4.1",
        "OPENROUTER_API_KEY",
    ),
    Provider(
        "deepseek",
        "DeepSeekLLMService",
        "https://api.deepseek.com/v1",
        "deepseek-flash",
        "DEEPSEEK_API_KEY",
    ),
    Provider(
        "cerebras",
        "CerebrasLLMService",
        "https://api.cerebras.ai/v1",
        "gpt-oss-120b",
        "CEREBRAS_API_KEY",
    ),
    Provider(
        "xai", "GrokLLMService", "https://api.x.ai/v1", "grok-4.20-non-reasoning", "XAI_API_KEY"
    ),
    Provider(
        "mistral",
        "MistralLLMService",
        "https://api.mistral.ai/v1",
        "mistral-small-latest",
        "MISTRAL_API_KEY",
    ),
    Provider("ollama", "OLLamaLLMService", "http://localhost:11434/v1", "llama2", None),
    Provider(
        "sambanova",
        "SambaNovaLLMService",
        "https://api.sambanova.ai/v1",
        "Meta-Llama-3.3-70B-Instruct",
        "SAMBANOVA_API_KEY",
    ),
    Provider(
        "nebius",
        "NebiusLLMService",
        "https://api.tokenfactory.nebius.com/v1",
        "Qwen/Qwen3-30B-A3B-Instruct-2507",
        "NEBIUS_API_KEY",
    ),
    Provider(
        "perplexity",
        "PerplexityLLMService",
        "https://api.perplexity.ai",
        "sonar",
        "PERPLEXITY_API_KEY",
    ),
    Provider(
        "qwen",
        "QwenLLMService",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "qwen-plus",
        "QWEN_API_KEY",
    ),
    Provider(
        "nvidia",
        "NvidiaLLMService",
        "https://integrate.api.nvidia.com/v1",
        "nvidia/nemotron-3.5-super-vl-120b-a12b",
        None,
    ),
    Provider(
        "baseten",
        "BasetenLLMService",
        "https://inference.baseten.co/v1",
        "zai-org/GLM-5.3",
        "BASETEN_API_KEY",
    ),
    Provider(
        "crusoe",
        "CrusoeLLMService",
        "https://api.inference.crusoecloud.com/v1",
        "openai/gpt-oss-120b",
        "CRUSOE_API_KEY",
    ),
    Provider(
        "novita",
        "NovitaLLMService",
        "https://api.novita.ai/openai",
        "moonshotai/kimi-k2.5",
        "NOVITA_API_KEY",
    ),
    Provider(
        "inception",
        "InceptionLLMService",
        "https://api.inceptionlabs.ai/v1",
        "mercury-2",
        "INCEPTION_API_KEY",
    ),
]

IDS = [p.module for p in PROVIDERS]


# One fake server for the whole file (starting and stopping one per test is most of the time).
module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def server(shared_server: FakeOpenAIServer) -> FakeOpenAIServer:
    """The shared fake with the previous test's script and records cleared."""
    fake = shared_server
    fake.api_key = "test-key"
    fake.chat_replies.clear()
    for records in (fake.chat_requests, fake.chat_urls, fake.request_headers):
        records.clear()
    return fake


def make(cls: type[OpenAILLMService], server: FakeOpenAIServer, **kwargs: Any) -> Any:
    return cls(api_key="test-key", base_url=server.base_url, **kwargs)  # type: ignore[call-arg]


async def ask(llm: OpenAILLMService, context: OpenAILLMContext, **kwargs: Any) -> list[Frame]:
    down, up = await run_test(llm, [OpenAILLMContextFrame(context=context)], **kwargs)
    assert not errors(up)
    return down


def user(text: str = "hi") -> OpenAILLMContext:
    return OpenAILLMContext([{"role": "user", "content": text}])


# ---------------------------------------------------------------------------- every provider


@module_loop
@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
async def test_streams_a_reply_with_the_default_model(
    provider: Provider, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An OpenAI account's ids are OpenAI's: never sent to another provider.
    monkeypatch.setenv("OPENAI_ORG_ID", "org-openai")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-openai")
    server.add_chat_reply("Hello from the provider.")
    llm = make(provider.service_class(), server)
    down = await ask(llm, user())

    assert texts(down) == "Hello from the provider."
    request = server.chat_requests[0]
    assert request["model"] == provider.model and request["stream"] is True
    assert request["messages"][-1] == {"role": "user", "content": "hi"}
    assert server.chat_urls == ["/v1/chat/completions"]
    headers = server.request_headers[-1]
    assert headers["authorization"] == "Bearer test-key"
    assert "openai-organization" not in headers and "openai-project" not in headers


@module_loop
@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
async def test_use_provider_thinking_default_is_accepted_and_never_sent(
    provider: Provider, server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Pipecat's BackendLLMWorker sets it on whatever LLM it runs; these services send no
    # thinking default, so the requests are as without it.
    service = provider.service_class()
    await ask(make(service, server), user())
    flagged = make(service, server, settings=service.Settings(use_provider_thinking_default=True))
    assert flagged.settings.use_provider_thinking_default is True
    update = LLMUpdateSettingsFrame(delta=LLMSettings(use_provider_thinking_default=False))
    with caplog.at_level("WARNING"):
        down, up = await run_test(
            flagged, [OpenAILLMContextFrame(context=user()), update, OpenAILLMContextFrame(user())]
        )
    assert not errors(up) and not caplog.records
    assert flagged.settings.use_provider_thinking_default is False
    plain, *with_flag = server.chat_requests
    assert with_flag == [plain, plain]


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_documented_defaults(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLPIPE_OPENAI_COMPATIBLE_URL", raising=False)
    monkeypatch.delenv("CALLPIPE_GROQ_URL", raising=False)
    cls = provider.service_class()
    assert inspect.signature(cls).parameters["base_url"].default.rstrip("/") == provider.base_url
    if provider.env is not None:
        monkeypatch.setenv(provider.env, "from-env")
    llm: Any = cls()
    assert llm._base_url == provider.base_url
    assert llm.model_name == provider.model and llm.settings.model == provider.model
    assert isinstance(llm.settings, cls.Settings)
    if provider.env is not None:
        assert llm._api_key == "from-env"


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_the_fakes_variable_replaces_only_the_provider_s_own_address(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``callpipe fakes`` prints it; Groq's LLM shares Groq's variable with its STT and TTS.
    var = "CALLPIPE_GROQ_URL" if provider.module == "groq" else "CALLPIPE_OPENAI_COMPATIBLE_URL"
    other = "CALLPIPE_OPENAI_COMPATIBLE_URL" if provider.module == "groq" else "CALLPIPE_GROQ_URL"
    if provider.env is not None:
        monkeypatch.setenv(provider.env, "from-env")
    cls: Any = provider.service_class()
    monkeypatch.setenv(other, "http://127.0.0.1:9/other/")
    assert cls()._base_url == provider.base_url  # not the other variable
    monkeypatch.setenv(var, "http://127.0.0.1:9/v1/")
    assert cls()._base_url == "http://127.0.0.1:9/v1"
    assert cls(base_url=provider.base_url)._base_url == "http://127.0.0.1:9/v1"  # the default
    assert cls(base_url="http://gateway.example/v1")._base_url == "http://gateway.example/v1"


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p.env], ids=lambda p: p.module)
def test_a_missing_key_names_the_provider_variable(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(provider.env or "", raising=False)
    with pytest.raises(ConfigurationError, match=provider.env or ""):
        provider.service_class()()


@module_loop
async def test_settings_model_wins_and_can_change_at_runtime(server: FakeOpenAIServer) -> None:
    from callpipe.services.groq.llm import GroqLLMService

    llm = make(GroqLLMService, server, settings=GroqLLMService.Settings(model="llama-3.3"))
    down, _ = await run_test(
        llm,
        [
            LLMMessagesFrame([{"role": "user", "content": "a"}]),
            LLMUpdateSettingsFrame(delta=GroqLLMService.Settings(model="qwen/qwen3.8-27b")),
            LLMMessagesFrame([{"role": "user", "content": "b"}]),
        ],
    )
    assert [r["model"] for r in server.chat_requests] == ["llama-3.3", "qwen/qwen3.8-27b"]


# ---------------------------------------------------------------------------- quirks


# Groq, xAI and Inception take the same top-level ``reasoning_effort`` field, handled by one
# rule.
REASONING = [p for p in PROVIDERS if p.module in ("groq", "xai", "inception")]


@module_loop
@pytest.mark.parametrize("provider", REASONING, ids=lambda p: p.module)
async def test_reasoning_effort_is_sent_only_when_set_and_extra_wins(
    provider: Provider, server: FakeOpenAIServer
) -> None:
    cls: Any = provider.service_class()
    await ask(make(cls, server), user())
    await ask(make(cls, server, settings=cls.Settings(reasoning_effort="low")), user())
    # ``extra`` is sent as given, over the typed field (as over temperature and the rest).
    both = cls.Settings(reasoning_effort="low", extra={"reasoning_effort": "high"})
    await ask(make(cls, server, settings=both), user())
    assert "reasoning_effort" not in server.chat_requests[0]
    assert [r.get("reasoning_effort") for r in server.chat_requests] == [None, "low", "high"]


@module_loop
@pytest.mark.parametrize("provider", REASONING, ids=lambda p: p.module)
async def test_reasoning_effort_changes_and_clears_at_runtime(
    provider: Provider, server: FakeOpenAIServer
) -> None:
    cls: Any = provider.service_class()
    await run_test(
        make(cls, server),
        [
            LLMUpdateSettingsFrame(delta=cls.Settings(reasoning_effort="low")),
            LLMMessagesFrame([{"role": "user", "content": "a"}]),
            LLMUpdateSettingsFrame(settings={"reasoning_effort": "medium"}),
            LLMMessagesFrame([{"role": "user", "content": "b"}]),
            LLMUpdateSettingsFrame(delta=cls.Settings(reasoning_effort=None)),
            LLMMessagesFrame([{"role": "user", "content": "c"}]),
        ],
    )
    efforts = [r.get("reasoning_effort", "absent") for r in server.chat_requests]
    assert efforts == ["low", "medium", "absent"]


@module_loop
@pytest.mark.parametrize("apart", [True, False], ids=["apart", "inside"])
async def test_xai_counts_reasoning_tokens_in_the_completion(
    apart: bool, server: FakeOpenAIServer
) -> None:
    from callpipe.services.xai.llm import GrokLLMService

    metrics = PipelineParams(enable_metrics=True, enable_usage_metrics=True)
    usage: list[LLMTokenUsage] = []
    for cls in (OpenAILLMService, GrokLLMService):
        server.add_chat_reply("Thought hard.", reasoning_tokens=40, reasoning_apart=apart)
        down = await ask(make(cls, server), user(), params=metrics)
        data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
        usage += [d.value for d in data if isinstance(d, LLMUsageMetricsData)]
    sent, grok = usage
    # xAI's own count is fixed up to include reasoning (OpenAI's is passed on as sent).
    assert grok.completion_tokens == sent.completion_tokens + (40 if apart else 0)
    assert grok.total_tokens == grok.prompt_tokens + grok.completion_tokens
    assert grok.reasoning_tokens == sent.reasoning_tokens == 40


@module_loop
async def test_together_sends_the_reasoning_switch(server: FakeOpenAIServer) -> None:
    from callpipe.services.together.llm import TogetherLLMService

    await ask(make(TogetherLLMService, server), user())
    settings = TogetherLLMService.Settings(reasoning={"enabled": False})
    await ask(make(TogetherLLMService, server, settings=settings), user())
    assert "reasoning" not in server.chat_requests[0]
    assert server.chat_requests[1]["reasoning"] == {"enabled": False}


@module_loop
async def test_inception_sends_realtime_by_default(server: FakeOpenAIServer) -> None:
    from callpipe.services.inception.llm import InceptionLLMService

    settings = InceptionLLMService.Settings(reasoning_effort="instant")
    await ask(make(InceptionLLMService, server, settings=settings), user())
    request = server.chat_requests[0]
    assert request["realtime"] is True and request["reasoning_effort"] == "instant"


MAX_TOKENS_ONLY = [
    ("fireworks", "FireworksLLMService"),
    ("deepseek", "DeepSeekLLMService"),
    ("mistral", "MistralLLMService"),
    ("perplexity", "PerplexityLLMService"),
]


@module_loop
@pytest.mark.parametrize("module, cls", MAX_TOKENS_ONLY)
async def test_output_limit_is_max_tokens(module: str, cls: str, server: FakeOpenAIServer) -> None:
    service = Provider(module, cls, "", "", None).service_class()
    settings = service.Settings(max_completion_tokens=77, seed=5)
    await ask(
        make(service, server, settings=settings),
        user(),
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
    )
    request = server.chat_requests[0]
    assert request["max_tokens"] == 77 and "max_completion_tokens" not in request
    assert "seed" not in request
    if module != "deepseek":  # DeepSeek reports usage when asked, as OpenAI does
        assert "stream_options" not in request


@module_loop
async def test_openai_keeps_max_completion_tokens_and_seed(server: FakeOpenAIServer) -> None:
    from callpipe.services.sambanova.llm import SambaNovaLLMService

    settings = SambaNovaLLMService.Settings(max_completion_tokens=77, seed=5)
    await ask(make(SambaNovaLLMService, server, settings=settings), user())
    request = server.chat_requests[0]
    assert request["max_completion_tokens"] == 77 and request["seed"] == 5


@module_loop
async def test_deepseek_thinking_and_assistant_reasoning_content(server: FakeOpenAIServer) -> None:
    from callpipe.services.deepseek.llm import DeepSeekLLMService

    history = OpenAILLMContext(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ]
    )
    await ask(make(DeepSeekLLMService, server), history)
    on = DeepSeekLLMService.Settings(thinking={"type": "enabled"})  # type: ignore[arg-type]
    await ask(make(DeepSeekLLMService, server, settings=on), user())
    await ask(
        make(DeepSeekLLMService, server, settings=DeepSeekLLMService.Settings(thinking=None)),
        user(),
    )
    first, second, third = server.chat_requests
    assert first["thinking"] == {"type": "disabled"}
    assert first["messages"][1] == {"role": "assistant", "content": "b", "reasoning_content": ""}
    assert second["thinking"] == {"type": "enabled"}
    assert "thinking" not in third


@module_loop
async def test_mistral_seed_and_message_rules(server: FakeOpenAIServer) -> None:
    from callpipe.services.mistral.llm import MistralLLMService

    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    context = OpenAILLMContext(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            {"role": "system", "content": "Now wrap up."},
        ]
    )
    llm = make(MistralLLMService, server, settings=MistralLLMService.Settings(seed=9))
    await ask(llm, context)
    request = server.chat_requests[0]
    assert request["random_seed"] == 9 and "seed" not in request
    roles = [m["role"] for m in request["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert request["messages"][4] == {"role": "assistant", "content": " "}


@module_loop
async def test_mistral_continues_a_trailing_assistant_message(server: FakeOpenAIServer) -> None:
    from callpipe.services.mistral.llm import mistral_messages

    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "The"}]
    assert mistral_messages(messages)[-1] == {"role": "assistant", "content": "The", "prefix": True}
    assert "prefix" not in messages[-1]  # the context's own message is left alone


@module_loop
async def test_openrouter_provider_preferences_and_gemini_system(server: FakeOpenAIServer) -> None:
    from callpipe.services.openrouter.llm import OpenRouterLLMService

    two_systems = [
        {"role": "system", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "system", "content": "c"},
    ]
    settings = OpenRouterLLMService.Settings(
        model="google/gemini-2.5-flash",
        provider={"order": ["google-vertex"], "allow_fallbacks": False},
    )
    await ask(make(OpenRouterLLMService, server, settings=settings), OpenAILLMContext(two_systems))
    await ask(make(OpenRouterLLMService, server), OpenAILLMContext(two_systems))
    gemini, default = server.chat_requests
    assert gemini["provider"] == {"order": ["google-vertex"], "allow_fallbacks": False}
    assert [m["role"] for m in gemini["messages"]] == ["system", "user", "user"]
    assert "provider" not in default
    assert [m["role"] for m in default["messages"]] == ["system", "user", "system"]


@module_loop
async def test_perplexity_sends_no_tools_and_alternating_messages(
    server: FakeOpenAIServer,
) -> None:
    from callpipe.services.perplexity.llm import PerplexityLLMService

    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    context = OpenAILLMContext(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "system", "content": "d"},
            {"role": "assistant", "content": "e"},
        ],
        tools=tools,
    )
    await ask(make(PerplexityLLMService, server), context)
    request = server.chat_requests[0]
    assert set(request) == {"model", "stream", "messages"}
    assert request["messages"] == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d"},
    ]


@module_loop
async def test_nvidia_inline_think_block_becomes_thought_frames(server: FakeOpenAIServer) -> None:
    from callpipe.services.nvidia.llm import NvidiaLLMService

    server.add_chat_reply("<think> weigh the options </think> Take the train.")
    server.add_chat_reply("No tags here.")
    llm = make(NvidiaLLMService, server)
    down, _ = await run_test(
        llm,
        [
            LLMMessagesFrame([{"role": "user", "content": "a"}]),
            LLMMessagesFrame([{"role": "user", "content": "b"}]),
        ],
    )
    assert texts(down) == "Take the train.No tags here."
    thought = "".join(f.text for f in down if isinstance(f, LLMThoughtTextFrame))
    assert thought.strip() == "weigh the options"
    starts = [i for i, f in enumerate(down) if isinstance(f, LLMThoughtStartFrame)]
    ends = [i for i, f in enumerate(down) if isinstance(f, LLMThoughtEndFrame)]
    first_text = next(i for i, f in enumerate(down) if isinstance(f, LLMTextFrame))
    assert len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0] < first_text


@module_loop
async def test_ollama_needs_no_key(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callpipe.services.ollama.llm import OLLamaLLMService

    server.api_key = "ollama"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    down = await ask(OLLamaLLMService(base_url=server.base_url), user("x"))
    assert texts(down) == "You said: x"
    assert server.request_headers[-1]["authorization"] == "Bearer ollama"


def test_grok_module_is_a_deprecated_alias() -> None:
    import sys

    from callpipe.services.xai.llm import GrokLLMService

    sys.modules.pop("callpipe.services.grok.llm", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module("callpipe.services.grok.llm")
    assert module.GrokLLMService is GrokLLMService
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


# ---------------------------------------------------------------------------- Azure


@module_loop
async def test_azure_dated_api_url_query_and_key_header(server: FakeOpenAIServer) -> None:
    from callpipe.services.azure.llm import AzureLLMService

    endpoint = server.base_url.removesuffix("/v1")
    llm = AzureLLMService(endpoint=endpoint + "/", api_key="test-key", model="my-gpt")
    down, up = await run_test(
        llm,
        [
            LLMMessagesFrame([{"role": "user", "content": "a"}]),
            LLMUpdateSettingsFrame(delta=AzureLLMService.Settings(model="other-deployment")),
            LLMMessagesFrame([{"role": "user", "content": "b"}]),
        ],
    )
    assert not errors(up) and texts(down) == "You said: aYou said: b"
    assert server.chat_urls == [
        "/openai/deployments/my-gpt/chat/completions?api-version=2025-04-01-preview",
        "/openai/deployments/other-deployment/chat/completions?api-version=2025-04-01-preview",
    ]
    headers = server.request_headers[-1]
    assert headers["api-key"] == "test-key" and "authorization" not in headers


@module_loop
async def test_azure_api_version_argument(server: FakeOpenAIServer) -> None:
    from callpipe.services.azure.llm import AzureLLMService

    endpoint = server.base_url.removesuffix("/v1")
    llm = AzureLLMService(endpoint=endpoint, api_key="test-key", api_version="2024-10-21")
    await ask(llm, user())
    assert server.chat_urls == [
        "/openai/deployments/gpt-4.1/chat/completions?api-version=2024-10-21"
    ]


@module_loop
async def test_azure_v1_endpoint_is_plain_openai(server: FakeOpenAIServer) -> None:
    from callpipe.services.azure.llm import AzureLLMService

    endpoint = server.base_url.removesuffix("/v1") + "/openai/v1"
    await ask(AzureLLMService(endpoint=endpoint, api_key="test-key"), user())
    assert server.chat_urls == ["/openai/v1/chat/completions"]
    assert server.chat_requests[0]["model"] == "gpt-4.1"
    assert server.request_headers[-1]["authorization"] == "Bearer test-key"


@module_loop
async def test_azure_token_provider_is_asked_per_request(server: FakeOpenAIServer) -> None:
    from callpipe.services.azure.llm import AzureLLMService

    server.api_key = None
    tokens = iter(["t1", "t2"])

    async def provider() -> str:
        return next(tokens)

    endpoint = server.base_url.removesuffix("/v1") + "/openai/v1"
    llm = AzureLLMService(endpoint=endpoint, token_provider=provider, warmup=False)
    await run_test(
        llm,
        [
            LLMMessagesFrame([{"role": "user", "content": "a"}]),
            LLMMessagesFrame([{"role": "user", "content": "b"}]),
        ],
    )
    auth = [h.get("authorization") for h in server.request_headers]
    assert auth == ["Bearer t1", "Bearer t2"]


def test_azure_needs_a_key_or_token_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    from callpipe.services.azure.llm import AzureLLMService

    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="token_provider"):
        AzureLLMService(endpoint="https://example.openai.azure.com")
