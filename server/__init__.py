"""MangaAssist HTTP + WebSocket server: our /v1 API and the LangGraph Agent Server API subset, on one FastAPI app."""
