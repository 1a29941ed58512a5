"""/docs: the REST API reference, rendered here from the OpenAPI schema.

FastAPI's own page loads Swagger UI from a CDN; on this origin (the dashboard's, with
its session cookies) that is script we do not control. This page has no script at all
and is served under the dashboard's Content-Security-Policy. The machine-readable
schema stays at /openapi.json.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from web.errors import request_language
from web.pages import page

router = APIRouter(tags=["reference"])

METHODS = ("get", "post", "put", "patch", "delete")


def _ref_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    if ref:
        return str(ref).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"[{_ref_name(schema.get('items') or {})}]"
    if "anyOf" in schema:
        return " | ".join(_ref_name(option) for option in schema["anyOf"])
    return str(schema.get("type", ""))


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body = (operation.get("requestBody") or {}).get("content") or {}
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "anchor": f"{method}-{path}".replace("/", "-").strip("-"),
                    "summary": operation.get("summary") or "",
                    "description": operation.get("description") or "",
                    "parameters": [
                        {
                            "name": p.get("name"),
                            "where": p.get("in"),
                            "required": bool(p.get("required")),
                            "type": _ref_name(p.get("schema") or {}),
                            "description": p.get("description") or "",
                        }
                        for p in operation.get("parameters") or []
                    ],
                    "body": [
                        (media, _ref_name(content.get("schema") or {}))
                        for media, content in body.items()
                    ],
                    "responses": [
                        (status, answer.get("description") or "")
                        for status, answer in (operation.get("responses") or {}).items()
                    ],
                }
            )
    return found


@router.get("/docs", include_in_schema=False)
async def api_reference(request: Request) -> HTMLResponse:
    schema = request.app.openapi()
    models = {
        name: json.dumps(model, indent=2, ensure_ascii=False)
        for name, model in sorted((schema.get("components") or {}).get("schemas", {}).items())
    }
    return page(
        "api_reference.html",
        request_language(request),
        info=schema.get("info") or {},
        operations=_operations(schema),
        models=models,
    )
