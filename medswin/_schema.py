"""One way to check a JSON document against a JSON Schema and say what is wrong in one line.

Model cards, dataset manifests and split files are all checked here, so every error reads the
same: where in the document (``labels/1``), what is wrong, and how many more problems there are.
"""

from __future__ import annotations

from typing import Any

__all__ = ["schema_problem"]


def schema_problem(data: Any, schema: dict[str, Any]) -> str | None:
    """``None`` when ``data`` fits ``schema``, else ``"at <path>: <problem>"`` for the most relevant error.

    A pattern failure shows the schema's ``description`` of the rule instead of the regular
    expression, and an ``anyOf`` of alternative required fields names the fields.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if not errors:
        return None
    error = jsonschema.exceptions.best_match(errors) or errors[0]
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message
    if error.validator == "pattern" and "description" in error.schema:
        message = f"{error.instance!r} is not allowed: {error.schema['description']}"
    alternatives = error.schema.get("anyOf", []) if error.validator == "anyOf" else []
    if alternatives and all(set(option) == {"required"} for option in alternatives):
        names = [name for option in alternatives for name in option["required"]]
        message = f"needs one of the fields {', '.join(repr(n) for n in names)}"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"at {where}: {message}{more}"
