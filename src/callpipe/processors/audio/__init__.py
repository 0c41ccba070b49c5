"""Audio processors."""
