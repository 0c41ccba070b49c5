"""Voicemail detection for outbound calls (``callpipe.extensions.voicemail``)."""

from callpipe.extensions.voicemail.voicemail_detector import TTSGate, VoicemailDetector

__all__ = ["TTSGate", "VoicemailDetector"]
