"""One package per telephony provider, and the registry the runner and simulator loop over.

Layer: above serializers and telephony (it builds serializers and call control), below the
runner (which asks it everything provider-specific). See docs/architecture.md, "Providers".
"""
