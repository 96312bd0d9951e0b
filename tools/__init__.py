"""LLM-visible tools (make_*_tools(deps)) and, in tools/backends, the adapters they call."""
