"""Backends with no graph knowledge: catalog, search index, recommender, orders, policies, cache, models."""
