"""The shapes an id from a request may have, checked at the edge so a malformed one is a 422, never a 500."""

from __future__ import annotations

CHECKPOINT_ID_PATTERN = r"^[0-9A-Za-z._:-]{1,128}$"
"""A checkpoint id: LangGraph writes UUID strings (``1f0c…-…``); printable ASCII without spaces or slashes."""

CHECKPOINT_NS_PATTERN = r"^[0-9A-Za-z._:|-]{0,512}$"
"""A checkpoint namespace: "" for the root graph, ``<node>:<task id>`` (``|``-joined when nested) for a subgraph."""

MAX_OFFSET = 1_000_000_000
"""Largest paging offset accepted (the databases take a 64-bit one; a larger number is a client error)."""
