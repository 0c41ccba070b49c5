"""PlaybackTracker: positions, marks, heard text; pure logic on explicit times."""

from __future__ import annotations

import pytest

from callpipe.frames.frames import TTSTextFrame
from callpipe.transports.playback import PlaybackTracker


def test_time_estimate_without_marks() -> None:
    t = PlaybackTracker()
    t.begin(10.0)
    t.sent = 1.0
    assert t.played(10.0) == 0.0
    assert t.played(10.4) == pytest.approx(0.4)
    assert t.played(12.0) == 1.0  # never more than was sent
    assert t.end_time() == 11.0


def test_marks_bound_the_estimate_and_late_acks_count() -> None:
    t = PlaybackTracker(uses_marks=True)
    t.begin(0.0)
    t.sent = 0.5
    m1 = t.new_mark()
    t.sent = 1.0
    m2 = t.new_mark()
    # By the clock 0.8 s would have played, but the first mark (0.5 s) is unconfirmed.
    assert t.played(0.8) == 0.5
    assert t.acknowledge(m1)
    assert t.played(0.8) == pytest.approx(0.8)
    assert not t.all_marks_acknowledged
    assert t.acknowledge(m2)
    assert t.all_marks_acknowledged
    assert t.confirmed == 1.0


def test_marks_from_a_cleared_generation_are_ignored() -> None:
    t = PlaybackTracker(uses_marks=True)
    t.begin(0.0)
    t.sent = 0.4
    old = t.new_mark()
    t.interrupt(0.1)
    t.begin(1.0)
    t.sent = 0.2
    assert not t.acknowledge(old)
    assert t.confirmed == 0.0


def test_texts_are_released_when_their_audio_has_played() -> None:
    t = PlaybackTracker()
    t.begin(0.0)
    t.sent = 0.6
    t.hold(TTSTextFrame("hello"))
    t.sent = 1.0
    t.hold(TTSTextFrame("world"))
    assert t.release(0.5) == []
    assert [f.text for f in t.release(0.7)] == ["hello"]  # type: ignore[attr-defined]
    assert t.next_held_position() == 1.0


def test_interrupt_reports_heard_seconds_and_words() -> None:
    t = PlaybackTracker()
    t.begin(0.0)
    t.sent = 0.5
    t.hold(TTSTextFrame("Hello "))
    t.sent = 1.2
    t.hold(TTSTextFrame("there"))
    t.sent = 2.0
    heard, text = t.interrupt(0.9)
    assert heard == pytest.approx(0.9)
    assert text == "Hello"
    assert not t.active
    assert t.generation == 1


def test_reanchor_after_the_far_end_ran_dry() -> None:
    t = PlaybackTracker()
    t.begin(0.0)
    t.sent = 0.2
    t.reanchor(5.0)
    assert t.end_time() == 5.0  # the next chunk starts playing now
    assert t.played(5.1) == pytest.approx(0.2)  # everything before it has been heard
