"""HTTP and WebSocket routers, one per resource: health, threads (/v1), ws (/v1), lgapi (LangGraph API, root)."""
