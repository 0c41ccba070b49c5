"""Small security helpers shared by transports and the runner."""
