"""Logs, traces and metric mechanics; no service's words."""
