"""Command-line front end: thin functions over io, inference and metrics."""
