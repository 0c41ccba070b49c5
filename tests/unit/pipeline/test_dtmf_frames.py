"""Pipecat 1.14's keypad frames: ``buttons``, dial strings and the ``DTMFFrame`` marker."""

from __future__ import annotations

import pytest

from callpipe.frames.frames import (
    DTMFFrame,
    InputDTMFFrame,
    KeypadEntry,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
)


@pytest.mark.parametrize("cls", [OutputDTMFFrame, OutputDTMFUrgentFrame])
def test_one_key_several_keys_or_a_dial_string(
    cls: type[OutputDTMFFrame] | type[OutputDTMFUrgentFrame],
) -> None:
    one = cls(KeypadEntry.FIVE)
    assert one.buttons == [KeypadEntry.FIVE] and one.to_string() == "5"
    several = cls(buttons=[KeypadEntry.ONE, KeypadEntry.POUND])
    assert several.to_string() == "1#" and several.button is KeypadEntry.ONE
    dialled = cls.from_string("0*9")
    assert dialled.buttons == [KeypadEntry.ZERO, KeypadEntry.STAR, KeypadEntry.NINE]
    # buttons wins over button, as in Pipecat
    assert cls(button=KeypadEntry.TWO, buttons=[KeypadEntry.THREE]).to_string() == "3"


@pytest.mark.parametrize("cls", [OutputDTMFFrame, OutputDTMFUrgentFrame])
def test_a_frame_without_keys_or_with_a_bad_key_is_refused(
    cls: type[OutputDTMFFrame] | type[OutputDTMFUrgentFrame],
) -> None:
    with pytest.raises(ValueError):
        cls()
    with pytest.raises(ValueError):
        cls(buttons=[])
    with pytest.raises(ValueError):
        cls.from_string("12A")


def test_every_keypad_frame_is_a_dtmf_frame() -> None:
    frames = [
        InputDTMFFrame(KeypadEntry.ONE),
        OutputDTMFFrame(KeypadEntry.ONE),
        OutputDTMFUrgentFrame(KeypadEntry.ONE),
    ]
    assert all(isinstance(frame, DTMFFrame) for frame in frames)
