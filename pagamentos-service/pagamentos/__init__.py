"""pagamentos-service: charges, declines and refunds for orders."""

__version__ = "0.1.0"
