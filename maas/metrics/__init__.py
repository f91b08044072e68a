"""Metrics: EMF emission from the functions (CloudWatch -> Prometheus export comes next)."""
