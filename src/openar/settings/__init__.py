"""Settings, one module per environment; every value comes from the environment."""
