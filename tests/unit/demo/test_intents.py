"""The demo's phone script, text in → text out."""

from __future__ import annotations

from datetime import datetime

from callpipe.demo.intents import (
    ASK_DAY,
    ASK_ORDER,
    GOODBYE,
    MENU,
    TRANSFER,
    DemoScript,
    spoken_digits,
)


def test_spoken_and_written_digits() -> None:
    assert spoken_digits("My order number in 45678.") == "45678"
    assert spoken_digits("it is four five six seven eight") == "45678"
    assert spoken_digits("one 2 three") == "123"
    assert spoken_digits("hello there") == ""


def test_time_repeat_transfer_and_menu() -> None:
    script = DemoScript(clock=datetime(2026, 1, 2, 14, 5))
    assert script.on_words("What time is it?").text == "The time is 14:05, in the afternoon."  # type: ignore[union-attr]
    assert script.on_words("Could you repeat that?").text == "The time is 14:05, in the afternoon."  # type: ignore[union-attr]
    assert script.on_words("Let me talk to a real person").text == TRANSFER  # type: ignore[union-attr]
    assert script.on_words("Bananas are yellow").text == MENU  # type: ignore[union-attr]
    assert script.on_words("   ") is None


def test_order_status_by_voice_and_by_keypad() -> None:
    script = DemoScript()
    assert script.on_words("Where is my order?").text == ASK_ORDER  # type: ignore[union-attr]
    reply = script.on_words("four five six")
    assert reply is not None and reply.text.startswith("Order 4 5 6 ")
    assert script.expecting is None
    # By keypad: digits are collected silently, pound completes the number.
    assert script.on_words("I want to check a package").text == ASK_ORDER  # type: ignore[union-attr]
    assert [script.on_key(k) for k in "789"] == [None, None, None]
    reply = script.on_key("#")
    assert reply is not None and reply.text.startswith("Order 7 8 9 ") and not reply.hang_up
    # Different numbers can get different statuses; the same number always the same one.
    assert DemoScript()._order_status("1").text != DemoScript()._order_status("2").text
    assert DemoScript()._order_status("12").text == DemoScript()._order_status("12").text


def test_appointment_on_a_weekday_only() -> None:
    script = DemoScript()
    assert script.on_words("I'd like to book an appointment").text == ASK_DAY  # type: ignore[union-attr]
    assert "closed at the weekend" in script.on_words("Saturday please").text  # type: ignore[union-attr]
    reply = script.on_words("Tuesday")
    assert reply is not None and "booked for Tuesday" in reply.text
    assert script.booked == ["tuesday"]


def test_goodbye_by_voice_or_pound_hangs_up_and_other_keys_are_read() -> None:
    assert DemoScript().on_words("OK, goodbye").hang_up  # type: ignore[union-attr]
    script = DemoScript()
    assert script.on_key("5").text == "You pressed 5."  # type: ignore[union-attr]
    assert script.on_key("*").text == "You pressed star."  # type: ignore[union-attr]
    reply = script.on_key("#")
    assert reply is not None and reply.text == GOODBYE and reply.hang_up
