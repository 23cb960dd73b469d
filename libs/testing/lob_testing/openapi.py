"""Check real HTTP responses against a service's OpenAPI 3.1 document.

A service's document and its answers must not drift: each checked response must have a status
the document lists for its operation, one of the listed media types, and a body that validates
against the listed schema (JSON Schema 2020-12, formats such as date-time included).
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import requests

METHODS = ("get", "put", "post", "delete", "patch")


class OpenApiCheck:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: set[tuple[str, str, int]] = set()

    def operations(self) -> set[tuple[str, str]]:
        """Every (METHOD, path template) the document describes."""
        return {
            (method.upper(), path)
            for path, item in self.document["paths"].items()
            for method in item
            if method in METHODS
        }

    def unchecked(self) -> set[tuple[str, str]]:
        """The operations no response has been checked against yet."""
        return self.operations() - {(method, path) for method, path, _ in self.checked}

    def __call__(self, response: requests.Response, method: str, path: str) -> None:
        """Assert that `response` (to METHOD on the path template) is what the document says."""
        where = f"{method.upper()} {path} -> {response.status_code}"
        operation = self.document["paths"].get(path, {}).get(method.lower())
        assert operation is not None, f"{method.upper()} {path} is not in the document"
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, (
            f"{where} is not documented (documented: {sorted(operation['responses'])}); "
            f"body: {response.text[:300]}"
        )
        content = documented.get("content")
        if not content:
            assert not response.content, f"{where}: the document says no body"
        else:
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            assert media_type in content, f"{where}: {media_type!r} is not one of {list(content)}"
            if "json" in media_type:
                self._validate(content[media_type].get("schema", {}), response.json(), where)
        self.checked.add((method.upper(), path, response.status_code))

    def _validate(self, schema: dict[str, Any], body: Any, where: str) -> None:
        rooted = {**schema, "components": self.document.get("components", {})}
        validator = jsonschema_rs.validator_for(rooted, validate_formats=True)
        problems = [
            f"{'/'.join(map(str, e.instance_path))}: {e}" for e in validator.iter_errors(body)
        ]
        assert not problems, f"{where}: body differs from the document: {problems[:5]}"
