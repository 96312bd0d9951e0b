"""Shared kernel: settings, per-run Context, graph state schemas, process-wide Deps, domain errors.

Nothing in ``core`` imports from ``tools``, ``nodes``, ``graphs`` or ``server``.
"""
