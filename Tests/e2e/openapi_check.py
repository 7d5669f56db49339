"""Holds every HTTP response the e2e tests get from a stack to the OpenAPI spec
(Sources/FCGIApp/openapi.yaml), so that a spec that drifts from the server fails the suite.

conftest.py wraps ``requests.Session.send`` (which ``requests.get`` and the ``Api`` helper
both end in): each response from a stack this session started is checked with openapi-core,
and a mismatch is recorded; the test during which it happened fails. Beyond openapi-core:

- an answer whose schema is marked ``x-by-version`` (``anyOf: [seed shape, full shape]``) must
  match the branch the request's ``v`` asked for: the seed shape without ``v=2``, the full one
  with it;
- a path or method the spec does not have must be a 4xx with ``{"error": "..."}`` (nginx's and
  the router's 404/405);
- nginx's own canned errors (a request refused before it reached the app: 400, 408, 413, 414,
  494) are accepted on any operation, as the spec's description says.

Not checked: 5xx (conftest's ``no_server_errors`` and the tests themselves deal with those),
HEAD and OPTIONS (no bodies; CORS has its own tests), ``/ws``, ``/uploads/`` and
``/openapi.yaml`` (not part of the REST API).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import referencing
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

SPEC_PATH = Path(__file__).resolve().parents[2] / "Sources" / "FCGIApp" / "openapi.yaml"
SPEC_URI = "urn:messenger-openapi"

# The bodies of nginx's own error pages (nginx/nginx.conf.template, /.nginx-error/).
NGINX_ERROR_BODIES = {
    b'{"error":"bad request"}\n',
    b'{"error":"request timed out"}\n',
    b'{"error":"request body too large"}\n',
    b'{"error":"request URI too long"}\n',
}
UNCHECKED_PREFIXES = ("/uploads/", "/ws", "/openapi.yaml", "/.nginx-error/")

_lock = threading.Lock()
_base_urls: set[str] = set()
mismatches: list[str] = []


class Spec:
    """The spec, parsed once: openapi-core's validator, the path templates as regexes, and a
    JSON Schema registry for the per-version branch check."""

    def __init__(self, path: Path = SPEC_PATH):
        self.document = yaml.safe_load(path.read_text())
        self.openapi = OpenAPI.from_dict(self.document)
        resource = referencing.Resource.from_contents(
            self.document, default_specification=referencing.jsonschema.DRAFT202012)
        self.registry = referencing.Registry().with_resource(SPEC_URI, resource)
        self.error_validator = self._validator("#/components/schemas/Error")
        # Literal paths first, so /users/me wins over /users/{user}.
        templates = sorted(self.document["paths"], key=lambda p: ("{" in p, p))
        self.paths = [(template, self._regex(template)) for template in templates]
        self._branch_validators: dict[tuple[str, str, str, int], jsonschema.Validator | None] = {}

    @staticmethod
    def _regex(template: str) -> re.Pattern:
        parts = re.split(r"(\{[^}]+\})", template)
        return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")

    def _validator(self, pointer: str) -> jsonschema.Validator:
        return jsonschema.Draft202012Validator({"$ref": SPEC_URI + pointer}, registry=self.registry)

    def template(self, path: str) -> str | None:
        for template, regex in self.paths:
            if regex.match(path):
                return template
        return None

    def _resolve(self, node: dict) -> tuple[dict, str | None]:
        """Follows a local $ref; returns the node and its pointer when it was a reference."""
        ref = node.get("$ref")
        if not ref:
            return node, None
        target = self.document
        for part in ref.lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return target, ref

    def branch_validator(self, template: str, method: str, status: str, v2: bool) -> jsonschema.Validator | None:
        """A validator for the shape `v` selects, when the answer's schema is x-by-version."""
        key = (template, method, status, int(v2))
        if key not in self._branch_validators:
            validator = None
            operation = self.document["paths"][template].get(method, {})
            response, _ = self._resolve(operation.get("responses", {}).get(status, {}))
            media = response.get("content", {}).get("application/json")
            if media:
                pointer = "#/paths/" + template.replace("~", "~0").replace("/", "~1") + \
                    f"/{method}/responses/{status}/content/application~1json/schema"
                schema, ref = self._resolve(media["schema"])
                if ref:
                    pointer = ref
                if schema.get("x-by-version"):
                    validator = self._validator(f"{pointer}/anyOf/{1 if v2 else 0}")
            self._branch_validators[key] = validator
        return self._branch_validators[key]


_spec: Spec | None = None


def spec() -> Spec:
    global _spec
    if _spec is None:
        _spec = Spec()
    return _spec


def register(base_url: str) -> None:
    """Responses from base_url (a stack this session started) are checked from now on."""
    with _lock:
        _base_urls.add(base_url.rstrip("/"))


def _describe(response: requests.Response) -> str:
    request = response.request
    return f"{request.method} {str(request.url)[:160]} -> {response.status_code} {response.content[:200]!r}"


def problem(response: requests.Response) -> str | None:
    """Why response breaks the spec, or None."""
    request = response.request
    method = (request.method or "GET").upper()
    url = urlsplit(str(request.url))
    base = f"{url.scheme}://{url.netloc}"
    if base not in _base_urls:
        return None
    if method in ("HEAD", "OPTIONS") or response.status_code >= 500:
        return None
    if any(url.path == p.rstrip("/") or url.path.startswith(p) for p in UNCHECKED_PREFIXES):
        return None
    s = spec()
    template = s.template(url.path)
    operation = s.document["paths"].get(template, {}).get(method.lower()) if template else None
    if operation is None:
        # Not an endpoint: it must be refused as one, with the API's error body.
        return _error_problem(response, s, "no such operation in the spec")
    status = str(response.status_code)
    if status not in operation.get("responses", {}) and response.content in NGINX_ERROR_BODIES:
        return None
    if not isinstance(request.body, (bytes, str, type(None))):
        # A streamed body (a generator, a file): the response check does not need it.
        request = request.copy()
        request.body = b""
    try:
        s.openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))
    except Exception as error:  # openapi-core raises a family of validation errors
        detail = "; ".join(str(e) for e in getattr(error, "schema_errors", []) or [])[:600]
        return f"{type(error).__name__}: {error}" + (f" ({detail})" if detail else "")
    if response.status_code == 200:
        query = parse_qs(url.query, keep_blank_values=True)
        v2 = query.get("v", [""])[0] == "2"
        validator = s.branch_validator(template, method.lower(), status, v2)
        if validator is not None:
            errors = list(validator.iter_errors(response.json()))
            if errors:
                shape = "full (v=2)" if v2 else "seed"
                return f"not the {shape} shape: " + "; ".join(e.message[:200] for e in errors[:3])
    return None


def _error_problem(response: requests.Response, s: Spec, why: str) -> str | None:
    if not 400 <= response.status_code < 500:
        return f"{why}, yet answered {response.status_code}"
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"{why}; the error body is not JSON"
    errors = list(s.error_validator.iter_errors(body))
    return f"{why}; not an error body: {errors[0].message}" if errors else None


def record(response: requests.Response) -> None:
    """Checks response and records a mismatch (never raises into the test's own request)."""
    try:
        found = problem(response)
    except Exception as error:  # a bug here must show, not pass silently
        found = f"the spec check itself failed: {type(error).__name__}: {error}"
    if found:
        with _lock:
            mismatches.append(f"{_describe(response)}: {found}")


_installed = False


def install() -> None:
    """Wraps requests.Session.send so every response passes through record()."""
    global _installed
    if _installed:
        return
    _installed = True
    original = requests.Session.send

    def send(self, request, **kwargs):
        response = original(self, request, **kwargs)
        if not kwargs.get("stream"):
            record(response)
        return response

    requests.Session.send = send
