"""Runtime-updatable service settings (Pipecat 1.14's ``Settings`` objects).

A service keeps one *store* object (every field set) built from its constructor arguments and
an optional ``settings=``; an update is a sparse *delta* object of the same class in which only
the fields to change are set (the rest stay ``NOT_GIVEN``). ``*UpdateSettingsFrame(delta=...)``
(or the older ``settings={...}`` dict) carries a delta to the service, which merges it with
:meth:`ServiceSettings.apply_update` and acts on the fields that changed.

Shared by every service: each one declares ``Settings`` as a nested subclass of the matching
base here and applies updates with :func:`delta_from_frame`, which also takes a delta of the
base class or of another provider's subclass (its fields the service has are applied).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from callpipe.frames.frames import ServiceUpdateSettingsFrame
from callpipe.turns.user_turn_completion_mixin import UserTurnCompletionConfig
from callpipe.utils.types import NOT_GIVEN, NotGiven, is_given

logger = logging.getLogger(__name__)

_S = TypeVar("_S", bound="ServiceSettings")


def unset() -> Any:
    """``NOT_GIVEN``, as a dataclass ``default_factory`` for settings fields."""
    return NOT_GIVEN


@dataclass
class ServiceSettings:
    """Base of all service settings: ``model`` and an ``extra`` dict for other keys."""

    model: str | None | NotGiven = field(default_factory=unset)
    extra: dict[str, Any] = field(default_factory=dict)

    _aliases: ClassVar[dict[str, str]] = {}
    """Alternative key names accepted by :meth:`from_mapping` (e.g. ``voice_id`` → ``voice``)."""
    _models: ClassVar[dict[str, type[BaseModel]]] = {}
    """Fields holding a config model, which :meth:`from_mapping` builds from a plain dict."""
    _store_defaults: ClassVar[dict[str, Any]] = {}
    """Values :func:`store_from` gives fields a service's defaults left unset."""

    def given_fields(self) -> dict[str, Any]:
        """The fields that are set (``extra`` entries merged in at the top level)."""
        result = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "extra" and is_given(getattr(self, f.name))
        }
        result.update(self.extra)
        return result

    def apply_update(self: _S, delta: _S) -> dict[str, Any]:
        """Merge the set fields of ``delta``; return ``{name: old value}`` of what changed."""
        changed: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            new = getattr(delta, f.name, NOT_GIVEN)
            if not is_given(new):
                continue
            old = getattr(self, f.name)
            if old != new:
                setattr(self, f.name, new)
                changed[f.name] = old
        for key, new in delta.extra.items():
            old = self.extra.get(key, NOT_GIVEN)
            if old != new:
                self.extra[key] = new
                changed[key] = old
        return changed

    @classmethod
    def from_mapping(cls: type[_S], settings: Mapping[str, Any]) -> _S:
        """A delta from a plain dict (the pre-1.0 ``settings={...}`` form)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in settings.items():
            name = cls._aliases.get(key, key)
            if name in names:
                model = cls._models.get(name)
                known[name] = model(**value) if model and isinstance(value, Mapping) else value
            else:
                extra[key] = value
        return cls(**known, extra=extra)

    def copy(self: _S) -> _S:
        return copy.deepcopy(self)

    def validate_complete(self) -> list[str]:
        """Pipecat 1.14's check of a store (a service's own settings): the fields still
        ``NOT_GIVEN`` (a custom service's ``__init__`` should set each, ``None`` where it has
        no such setting), logged as one warning; returns their names. callpipe's services
        call it for nothing: it is for a custom service's own use."""
        missing = [
            f.name
            for f in dataclasses.fields(self)
            if f.name != "extra" and not is_given(getattr(self, f.name))
        ]
        if missing:
            logger.warning(
                "%s: fields not initialized (NOT_GIVEN): %s",
                type(self).__name__,
                ", ".join(missing),
            )
        return missing


@dataclass
class LLMSettings(ServiceSettings):
    """Sampling settings common to LLM services (``None``: the provider's default).

    ``filter_incomplete_user_turns`` / ``user_turn_completion_config``: the turn-completion
    marker protocol (see :mod:`callpipe.services.llm_service`); set at start by
    ``FilterIncompleteUserTurnStrategies`` through an ``LLMUpdateSettingsFrame``.

    ``use_provider_thinking_default``: services that, for phone latency, send a model its
    lowest thinking setting when the bot configures none (Anthropic, Gemini, OpenAI
    Responses) send nothing when this is True, so the model thinks as its provider decides.
    Unset counts as False (a service's store holds False). Other services ignore it.
    """

    system_instruction: str | None | NotGiven = field(default_factory=unset)
    temperature: float | None | NotGiven = field(default_factory=unset)
    max_tokens: int | None | NotGiven = field(default_factory=unset)
    top_p: float | None | NotGiven = field(default_factory=unset)
    top_k: int | None | NotGiven = field(default_factory=unset)
    frequency_penalty: float | None | NotGiven = field(default_factory=unset)
    presence_penalty: float | None | NotGiven = field(default_factory=unset)
    seed: int | None | NotGiven = field(default_factory=unset)
    filter_incomplete_user_turns: bool | None | NotGiven = field(default_factory=unset)
    user_turn_completion_config: UserTurnCompletionConfig | None | NotGiven = field(
        default_factory=unset
    )
    use_provider_thinking_default: bool | NotGiven = field(default_factory=unset)

    _store_defaults: ClassVar[dict[str, Any]] = {"use_provider_thinking_default": False}


@dataclass
class TTSSettings(ServiceSettings):
    """Voice and language of a TTS service."""

    voice: str | None | NotGiven = field(default_factory=unset)
    language: str | None | NotGiven = field(default_factory=unset)

    _aliases: ClassVar[dict[str, str]] = {"voice_id": "voice"}


@dataclass
class STTSettings(ServiceSettings):
    """Language of an STT service."""

    language: str | None | NotGiven = field(default_factory=unset)


def delta_from_frame(
    frame: ServiceUpdateSettingsFrame, cls: type[_S], service: object
) -> _S | None:
    """The delta an update frame carries for ``service``, as a ``cls``; None if not for it.

    ``frame.delta`` wins over the dict form. As in Pipecat 1.14, the delta need not be of the
    service's own class: a base ``LLMSettings``/``TTSSettings``/``STTSettings`` (or
    ``ServiceSettings``) delta, or another provider's subclass, is accepted and its given
    fields that ``cls`` has are used (see :func:`convert_delta`). A delta of another kind of
    service (a ``TTSSettings`` reaching an LLM) is refused with a warning: a bug in the bot,
    not a reason to crash.
    """
    if frame.service is not None and frame.service is not service:
        return None
    delta = frame.delta
    if delta is None:
        return cls.from_mapping(frame.settings) if frame.settings else None
    if type(delta) is cls:
        return delta
    kind = settings_kind(cls)
    if not (isinstance(delta, kind) or issubclass(kind, type(delta))):
        logger.warning(
            "%s: ignoring a settings update of type %s (expected a %s)",
            service,
            type(delta).__name__,
            kind.__name__,
        )
        return None
    converted, ignored = convert_delta(delta, cls)
    if ignored:
        logger.warning(
            "%s: %s not supported by %s; ignored",
            service,
            ", ".join(ignored),
            cls.__name__,
        )
    return converted


def settings_kind(cls: type[ServiceSettings]) -> type[ServiceSettings]:
    """The kind's base class ``cls`` belongs to: LLMSettings, TTSSettings or STTSettings
    (ServiceSettings for other services)."""
    for kind in (LLMSettings, TTSSettings, STTSettings):
        if issubclass(cls, kind):
            return kind
    return ServiceSettings


def convert_delta(delta: ServiceSettings, cls: type[_S]) -> tuple[_S, list[str]]:
    """``delta`` re-made as a delta of ``cls``, and the names of its given fields ``cls``
    lacks (dropped: they are not moved to ``extra``, which some services send as is)."""
    if type(delta) is cls:
        return delta, []
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    known: dict[str, Any] = {}
    ignored: list[str] = []
    for f in dataclasses.fields(delta):
        if f.name == "extra":
            continue
        value = getattr(delta, f.name)
        if not is_given(value):
            continue
        if f.name in names:
            known[f.name] = value
        else:
            ignored.append(f.name)
    return cls(**known, extra=dict(delta.extra)), ignored


def store_from(defaults: _S, settings: _S | None) -> _S:
    """The store object: ``defaults`` (from constructor arguments) updated by ``settings=``;
    fields both leave unset get the class's ``_store_defaults``."""
    if settings is not None:
        defaults.apply_update(settings)
    for name, value in defaults._store_defaults.items():
        if not is_given(getattr(defaults, name)):
            setattr(defaults, name, value)
    return defaults


def require_voice(service: str, voice_id: str | None, settings: TTSSettings | None) -> str:
    """The voice from ``voice_id`` or ``settings.voice`` (1.14 bots pass either)."""
    voice = settings.voice if settings is not None else None
    if isinstance(voice, str) and voice:
        return voice
    if voice_id:
        return voice_id
    from callpipe.errors import ConfigurationError

    raise ConfigurationError(
        f"{service}: no voice. Pass voice_id=... or settings={service}.Settings(voice=...)."
    )


def copy_given(delta: ServiceSettings, target: Any, names: tuple[str, ...]) -> None:
    """Copy the given fields ``names`` of ``delta`` onto attributes of ``target`` (params)."""
    for name in names:
        value = getattr(delta, name, NOT_GIVEN)
        if is_given(value):
            setattr(target, name, value)
