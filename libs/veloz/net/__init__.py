"""Calling other services over HTTP: the pooled client with timeouts, retries and a connect
budget."""
