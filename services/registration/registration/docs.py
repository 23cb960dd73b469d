"""GET /docs: the API as a page a school's IT can read and try, with Swagger UI's own files
from the installed swagger-ui-bundle package (no CDN: it works offline and behind firewalls).

swagger-ui-bundle 1.1.0 carries Swagger UI 4.15.5, which reads OpenAPI 3.0 documents, so the
page loads the same document built for OpenAPI 3.0.3 (registration.openapi builds both from
the same schemas); /openapi.json stays 3.1.
"""

from __future__ import annotations

import mimetypes
from functools import cache

from swagger_ui_bundle import swagger_ui_path
from werkzeug.wrappers import Response

from lob_common.http import not_found

SWAGGER_UI_OPENAPI = "3.0.3"
# The files the page needs; nothing else of the package directory is served.
ASSETS = (
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "favicon-16x16.png",
    "favicon-32x32.png",
)
INIT = "init.js"

# Relative addresses: the page works at /docs behind any path prefix an ingress adds.
PAGE = """<!doctype html>
<html lang="nl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LOB regio - registratie-API</title>
<link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""

INIT_JS = """window.ui = SwaggerUIBundle({
  url: "docs/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


@cache
def _read(name: str) -> bytes:
    return (swagger_ui_path / name).read_bytes()


def asset(name: str) -> Response:
    if name == INIT:
        return Response(INIT_JS, mimetype="text/javascript")
    if name not in ASSETS:
        raise not_found(f"/docs/{name}")
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(_read(name), mimetype=mimetype, headers={"Cache-Control": "max-age=86400"})
