"""pedidos-service: orders and the purchase saga."""
