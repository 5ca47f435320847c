"""Offline half of the product: data loading, the synthetic plant, training, export and
evaluation of sensor autoencoders. Run ``python -m models --help``; the service never
imports this package."""
