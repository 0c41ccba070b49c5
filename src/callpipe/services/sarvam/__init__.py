"""Sarvam AI speech services: streaming speech-to-text and Bulbul text-to-speech."""
