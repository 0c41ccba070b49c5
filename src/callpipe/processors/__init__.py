"""Frame processors: the base class and reusable processors."""
