"""Filters: processors that let some frames through and drop the rest."""
