"""The model service: FastAPI routes, request validation, micro-batching, hot swap and Delta logging."""
