"""jaxvision.losses."""
