pytest_plugins = ["veloz.dev.testing"]
