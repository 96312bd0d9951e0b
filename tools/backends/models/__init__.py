"""Model profiles: `local` (offline, deterministic) and `bedrock` (langchain-aws) implementations of the roles."""
