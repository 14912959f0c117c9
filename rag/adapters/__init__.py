"""Adapters: the only place that imports third-party engines."""
