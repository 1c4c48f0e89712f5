"""The OpenAPI document and the docs page, which must work without the internet."""

from __future__ import annotations

import re

from django.contrib.staticfiles import finders

EXPECTED_OPERATIONS = {
    ("get", "/api/v1/me"),
    ("patch", "/api/v1/me"),
    ("get", "/api/v1/teams"),
    ("post", "/api/v1/teams"),
    ("get", "/api/v1/teams/{slug}"),
    ("patch", "/api/v1/teams/{slug}"),
    ("get", "/api/v1/teams/{slug}/members"),
    ("patch", "/api/v1/teams/{slug}/members/{member_id}"),
    ("delete", "/api/v1/teams/{slug}/members/{member_id}"),
    ("get", "/api/v1/teams/{slug}/invitations"),
    ("post", "/api/v1/teams/{slug}/invitations"),
    ("post", "/api/v1/teams/{slug}/invitations/{invitation_id}/resend"),
    ("delete", "/api/v1/teams/{slug}/invitations/{invitation_id}"),
    ("get", "/api/v1/teams/{slug}/audit-events"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{token_id}"),
}


def test_schema_is_an_openapi_3_document_listing_every_endpoint(client, db):
    response = client.get("/api/v1/schema/")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Pipetower API"
    operations = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert operations >= EXPECTED_OPERATIONS  # other apps add theirs
    for method, path in EXPECTED_OPERATIONS:
        operation = schema["paths"][path][method]
        assert operation["security"] == [{"TokenAuth": []}, {"SessionAuth": []}], path
        assert operation["responses"]["401"]["content"]["application/json"], (method, path)


def test_schema_documents_the_list_and_error_shapes(client, db):
    schemas = client.get("/api/v1/schema/").json()["components"]["schemas"]

    page = schemas["Page_TokenOut_"]
    assert set(page["required"]) == {"items", "count", "page", "page_size", "next", "previous"}
    assert set(schemas["ErrorBody"]["properties"]) == {"code", "message", "details"}
    assert "token_hash" not in str(schemas)


def test_schema_declares_bearer_authentication(client, db):
    security = client.get("/api/v1/schema/").json()["components"]["securitySchemes"]

    assert security["TokenAuth"] == {"type": "http", "scheme": "bearer"}


def test_docs_page_uses_only_local_assets(client, db):
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/ninja/swagger-ui-bundle.js" in sources
    assert all(source.startswith("/") for source in sources), sources
    assert "cdn" not in html.lower()
    assert '"validatorUrl": null' in html  # no calls to a public schema validator
    assert '"url": "/api/v1/schema/"' in html


def test_docs_assets_are_shipped_with_pipetower(db):
    for asset in ("swagger-ui-bundle.js", "swagger-ui-init.js", "swagger-ui.css"):
        assert finders.find(f"ninja/{asset}"), asset
