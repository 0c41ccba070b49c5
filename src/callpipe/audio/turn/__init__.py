"""End-of-turn analysis: deciding from the caller's audio whether they finished speaking."""
