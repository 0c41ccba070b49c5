"""The demo's small phone script, as plain text in → text out (no audio, no asyncio).

What a caller can do: ask the time, ask to repeat, check an order (order number by voice or
keypad, then pound), book an appointment (pick a weekday), ask for a person (the transfer is
explained: the demo has nobody to transfer to), press keys, and say goodbye. Anything else gets
the menu. :class:`DemoScript` keeps the state of one call; the words come from Whisper, so
matching is forgiving (key words, not sentences).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

GREETING = (
    "Hello! This is the callpipe demo. You can ask me the time, check an order, "
    "or book an appointment. Press pound or say goodbye to hang up."
)
MENU = (
    "I can tell you the time, check an order, book an appointment, "
    "or repeat what I said. What would you like?"
)
GOODBYE = "Goodbye!"
ASK_ORDER = (
    "Sure. What is your order number? Say the digits, or type them on your keypad and press pound."
)
ASK_DAY = "Which day would you like, Monday to Friday?"
TRANSFER = (
    "In a real deployment I would transfer you to a person now, through your phone provider. "
    "This demo has nobody to transfer to, so let's carry on."
)
NOTHING_TO_REPEAT = "I have not said anything yet."

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "to": "2", "too": "2",
    "three": "3", "four": "4", "for": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9",
}  # fmt: skip
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
_STATUSES = (
    "is on its way. It arrives tomorrow",
    "is being packed. It ships today",
    "was delivered yesterday",
)


def _has(text: str, *words: str) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", text) for w in words)


def spoken_digits(text: str) -> str:
    """The digits in ``text``, whether written ("4567") or spoken ("four five six")."""
    digits = []
    for token in re.findall(r"[a-z]+|\d+", text.lower()):
        if token.isdigit():
            digits.append(token)
        elif token in _DIGIT_WORDS:
            digits.append(_DIGIT_WORDS[token])
    return "".join(digits)


@dataclass(slots=True)
class Reply:
    """What the bot says next, and whether it then hangs up."""

    text: str
    hang_up: bool = False


@dataclass
class DemoScript:
    """One call's dialogue state (see the module docstring)."""

    expecting: str | None = None
    """``order`` (an order number) or ``day`` (an appointment day), else None."""
    keys: str = ""
    last: str = GREETING
    booked: list[str] = field(default_factory=list)
    clock: datetime | None = None
    """Fixed time for tests; None: the current local time."""

    def _say(self, text: str, hang_up: bool = False) -> Reply:
        self.last = text
        return Reply(text, hang_up)

    def on_words(self, said: str) -> Reply | None:
        """The bot's answer to a caller utterance (None: nothing to say)."""
        text = said.lower().strip()
        if not text:
            return None
        if _has(text, "bye", "goodbye", "hang up", "that's all", "that is all"):
            return self._say(GOODBYE, hang_up=True)
        if _has(text, "repeat", "again", "pardon", "sorry"):
            return Reply(self.last if self.last else NOTHING_TO_REPEAT)
        if self.expecting == "order":
            number = spoken_digits(text)
            if number:
                return self._order_status(number)
        if self.expecting == "day":
            day = next((d for d in _WEEKDAYS if d in text), None)
            if day:
                self.expecting = None
                self.booked.append(day)
                return self._say(
                    f"You are booked for {day.capitalize()} at ten in the morning. Anything else?"
                )
            if _has(text, "saturday", "sunday", "weekend"):
                return self._say("Sorry, we are closed at the weekend. " + ASK_DAY)
        if _has(text, "time", "clock"):
            now = self.clock or datetime.now()
            period = ("night", "morning", "afternoon", "evening")[now.hour // 6]
            return self._say(f"The time is {now.strftime('%H:%M')}, in the {period}.")
        if _has(text, "order", "package", "delivery", "parcel"):
            self.expecting, self.keys = "order", ""
            return self._say(ASK_ORDER)
        if _has(text, "appointment", "book", "booking", "schedule"):
            self.expecting = "day"
            return self._say(ASK_DAY)
        if _has(text, "person", "human", "agent", "operator", "representative", "transfer"):
            return self._say(TRANSFER)
        return self._say(MENU)

    def on_key(self, key: str) -> Reply | None:
        """The bot's answer to a keypad press."""
        if self.expecting == "order" and key.isdigit():
            self.keys += key
            return None  # collect silently until pound
        if key == "#":
            if self.expecting == "order" and self.keys:
                number, self.keys = self.keys, ""
                return self._order_status(number)
            return self._say(GOODBYE, hang_up=True)
        name = {"*": "star"}.get(key, key)
        return self._say(f"You pressed {name}.")

    def _order_status(self, number: str) -> Reply:
        self.expecting = None
        status = _STATUSES[sum(int(d) for d in number) % len(_STATUSES)]
        spaced = " ".join(number)
        return self._say(f"Order {spaced} {status}. Anything else?")
