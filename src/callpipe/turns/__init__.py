"""User-turn configuration of the 1.14 user aggregator: start/stop strategies, mute, idle.

Mute strategies are driven frame by frame exactly as in Pipecat 1.14 (custom subclasses work).
Start/stop strategies are read as configuration by callpipe's user aggregator, whose turn
logic is VAD + transcripts (see :mod:`callpipe.turns.user_turn_strategies`). Pipecat 1.14's
submodule paths (``callpipe.turns.user_start.vad_user_turn_start_strategy``, ...) re-export
the same classes. :class:`~callpipe.turns.user_turn_processor.UserTurnProcessor` runs the same
turn model as a processor of its own, so several aggregators can follow one decision.
"""
