"""Graph builders: ``build_specialist(spec, deps)`` and ``build_supervisor(deps)`` return uncompiled StateGraphs."""
