"""api-gateway: the one entry point (auth, rate limits, request ids, proxy, breakers)."""
