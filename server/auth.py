"""API-key authentication: pull the key from a request or WebSocket and map it to a user id (or dev mode)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from server.accounts import AccountsRepository
from server.errors import Unauthorized

DEV_USER = "dev"
"""The user of dev mode (``MANGAASSIST_AUTH=off``) when no ``X-User-Id`` header is sent."""
_USER_ID = re.compile(r"^[A-Za-z0-9_.@:-]{1,128}$")


def key_from(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> str | None:
    """The API key of a request: ``Authorization: Bearer <key>``, else ``X-Api-Key`` (what langgraph-sdk sends),
    else (WebSocket only, browsers cannot set headers) the ``api_key`` query parameter. None when absent."""
    auth = headers.get("authorization") or ""
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    if query is not None and query.get("api_key"):
        return query["api_key"].strip()
    return None


async def authenticate(accounts: AccountsRepository, auth_mode: str, headers: Mapping[str, str],
                       query: Mapping[str, str] | None = None) -> str:
    """The authenticated user id. Dev mode (``auth_mode == "off"``): the ``X-User-Id`` header (or query
    ``user_id`` on a WebSocket) or "dev", no key needed. Otherwise the key must be active in ``accounts``.

    Raises server.errors.Unauthorized (401) for a missing, unknown or revoked key, or a malformed dev user id.
    """
    if auth_mode == "off":
        user = headers.get("x-user-id") or (query or {}).get("user_id") or DEV_USER
        if not _USER_ID.match(user):
            raise Unauthorized("X-User-Id must be 1-128 characters of letters, digits and _ . @ : -")
        return user
    key = key_from(headers, query)
    if not key:
        raise Unauthorized()
    owner = await accounts.user_for_key(key)
    if owner is None:
        raise Unauthorized("invalid or revoked API key")
    return owner
