"""Local Whisper speech-to-text (faster-whisper; ``pip install 'callpipe[whisper]'``)."""
