pytest_plugins = ["veloz.testing"]
