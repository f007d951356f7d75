"""Layer classes: validate arguments, hold weights, describe themselves."""
