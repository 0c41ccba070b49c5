"""User-turn configuration of the 1.14 user aggregator: start/stop strategies, mute, idle.

Mute strategies are driven frame by frame exactly as in Pipecat 1.14 (custom subclasses work).
Start/stop strategies are read as configuration by callpipe's user aggregator, whose turn
logic is VAD + transcripts (see :mod:`callpipe.turns.user_turn_strategies`).
"""
