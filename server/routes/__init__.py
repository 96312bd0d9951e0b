"""HTTP and WebSocket routers, one per resource: health, threads (/v1), ws (/v1), and lgapi (LangGraph API, root).

lgapi is a package split by role: schemas, assistants, threads, runs and streaming; its ``router`` joins them.
"""
