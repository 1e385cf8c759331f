"""Choosing among forecasts: combinations, the ensemble, the champion rule and reconciliation."""
