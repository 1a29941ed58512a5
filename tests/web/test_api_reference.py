"""/docs: the API reference loads nothing from another origin.

FastAPI's default page pulls Swagger UI's script and CSS from a CDN, so a compromise
of that CDN ran script on the dashboard's origin (where login cookies live). The page
is now rendered here from the OpenAPI schema, under the dashboard's CSP.
"""

from __future__ import annotations

import re

from tests.web.conftest import Web


async def test_the_reference_lists_every_operation_and_loads_only_our_files(web: Web) -> None:
    schema = (await web.client.get("/openapi.json")).json()
    answer = await web.client.get("/docs", headers={"Accept-Language": "pt-BR"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    page = answer.text
    for path, operations in schema["paths"].items():
        assert path in page, path
        for operation in operations.values():
            if operation.get("summary"):
                assert operation["summary"] in page
    for url in re.findall(r'(?:src|href|action)="([^"]*)"', page):
        assert url.startswith(("/", "#", "data:")), url
    assert "cdn" not in page.lower() and "<script>" not in page
    assert "Parâmetros" in page or "Respostas" in page  # in the reader's language
