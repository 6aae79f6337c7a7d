"""estoque-service: catalog, stock and all-or-nothing reservations."""
