"""The Flask edge: the app factory, request validation and OpenAPI, problem answers."""
