"""Node factories (classify, think, execute, reflect, respond, merge, quality, finalize), prompts, pure routers."""
