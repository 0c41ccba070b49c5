"""Small synchronisation helpers shared by processors (Pipecat's ``utils.sync``)."""
