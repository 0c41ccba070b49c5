"""Anthropic (Claude) services."""
