"""Code every Pedidos Veloz service shares: config, logs, errors, database, HTTP, metrics."""
