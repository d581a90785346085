"""Command-line front end: thin functions over io, inference and metrics."""

import medswin.weights  # noqa: F401  (plugs published weights names into resolve_model: ``-m NAME``)
