"""EasyR1 (installs as package ``verl``): entry point, trainer subclass and worker extension."""
