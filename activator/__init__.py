"""rating-activator: holds requests while no rating pod is ready, then steps aside."""
