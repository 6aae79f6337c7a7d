"""Development and test tooling: the local stack, the embedded database, test helpers, fault
loads. Never in an image."""
