"""The OpenAPI spec itself (Sources/FCGIApp/openapi.yaml): a valid OpenAPI 3.1 document,
served by nginx at /openapi.yaml, and describing exactly the routes the router has (every
response the suite gets is also held to it: openapi_check.py)."""

from __future__ import annotations

import re
from pathlib import Path

import requests
import yaml
from openapi_spec_validator import validate

from helpers import TIMEOUT, assert_error

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "Sources" / "FCGIApp" / "openapi.yaml"


def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def test_the_spec_is_valid_openapi_3_1():
    document = spec()
    assert document["openapi"].startswith("3.1")
    validate(document)


def router_routes() -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) of every router.add in Sources/FCGIApp/Routes/API.swift."""
    source = (REPO_ROOT / "Sources" / "FCGIApp" / "Routes" / "API.swift").read_text()
    routes = set()
    for method, path in re.findall(r'router\.add\("([A-Z]+)",\s*"([^"]+)"', source):
        routes.add((method, re.sub(r":([A-Za-z_]+)", r"{\1}", path)))
    assert len(routes) > 20, routes
    return routes


def test_the_spec_has_exactly_the_routers_routes():
    documented = {(method.upper(), path) for path, item in spec()["paths"].items()
                  for method in item if method in ("get", "put", "post", "patch", "delete")}
    routes = router_routes()
    assert routes - documented == set(), "routes missing from the spec"
    assert documented - routes == set(), "the spec documents routes the router does not have"


def test_every_operation_documents_its_errors():
    document = spec()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            responses = operation["responses"]
            assert "400" in responses, (method, path)  # at least ?v= can be wrong
            public = operation.get("security") == [] or {} in operation.get("security", [{"x": 1}])
            if not public or path == "/users/{user}":
                assert "401" in responses, (method, path)
            if operation.get("requestBody", {}).get("content", {}).get("application/json") is not None:
                assert "413" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith("4"):
                    assert response == {"$ref": response.get("$ref")} and response["$ref"].startswith(
                        "#/components/responses/"), (method, path, status)


def test_nginx_serves_the_spec(stack):
    response = requests.get(stack.base_url + "/openapi.yaml", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/yaml; charset=utf-8"
    assert response.content == SPEC_PATH.read_bytes()
    head = requests.head(stack.base_url + "/openapi.yaml", timeout=TIMEOUT)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(response.content)
    assert_error(requests.post(stack.base_url + "/openapi.yaml", timeout=TIMEOUT), 405)
