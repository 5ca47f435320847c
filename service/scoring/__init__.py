"""Scoring core: artifact loading, engine, smoothing and decisions (no web framework here)."""
