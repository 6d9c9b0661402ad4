"""Scenario simulation: what-if initiatives on CX drivers, run through the fitted customer models."""
