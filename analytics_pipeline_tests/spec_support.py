"""Reading the platforms' own specifications (`specs/`, see its README) in tests.

- `Exchange` / `recording_session`: every request a real client sends and the reply it got,
  captured by a `requests` response hook on the session its `ApiSession` uses.
- `OpenApi`: an OpenAPI 3.0 document (X's) that checks a request (path, method, query
  parameters against their schemas) and a reply (the operation's response schema, discriminators
  included, and "undeclared" keys: properties the schema does not name).
- `MetaSpec`: Meta's node descriptions (fields, GET edges and their parameters, enums).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPECS = Path(__file__).resolve().parent / "specs"
X_SPEC_VERSIONS = ("2.159", "2.167")
_SPEC_URI = "urn:analytics-spec"
# RFC 3339 date-time (OpenAPI `format: date-time`).
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE
)


def published_sha256() -> dict[str, str]:
    """`relative path -> sha256` as listed in specs/README.md."""
    text = (SPECS / "README.md").read_text()
    return dict(
        (path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M)
    )


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange of a client (the token is in a header, never recorded here)."""

    method: str
    url: str
    body: str | None  # the form body of a POST, as sent
    status: int
    content_type: str
    reply: Any  # the decoded JSON reply, or None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.url).query, keep_blank_values=True)


def recording_session() -> tuple[requests.Session, list[Exchange]]:
    """A session that records every exchange into the returned list."""
    exchanges: list[Exchange] = []

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        try:
            reply = response.json()
        except ValueError:
            reply = None
        exchanges.append(
            Exchange(
                method=str(request.method),
                url=str(request.url),
                body=body,
                status=response.status_code,
                content_type=response.headers.get("content-type", ""),
                reply=reply,
            )
        )

    session = requests.Session()
    session.hooks["response"].append(record)
    return session, exchanges


# --------------------------------------------------------------------------- OpenAPI


def _nullable_as_type(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema (`type: [T, "null"]`), recursively."""
    if isinstance(node, dict):
        out = {key: _nullable_as_type(value) for key, value in node.items()}
        if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_nullable_as_type(item) for item in node]
    return node


def _discriminator(
    validator: Any, value: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """OpenAPI's `discriminator`: an object whose `propertyName` value is mapped must also be
    valid against the mapped schema (jsonschema ignores the keyword). An unmapped value is an
    error unless a oneOf/anyOf next to it decides."""
    if not isinstance(instance, dict):
        return
    kind = instance.get(value["propertyName"])
    mapping = value.get("mapping") or {}
    if kind not in mapping:
        if "oneOf" not in schema and "anyOf" not in schema:
            yield ValidationError(
                f"{value['propertyName']} {kind!r} is none of the spec's {sorted(mapping)}"
            )
        return
    active = _ACTIVE_DISCRIMINATIONS
    key = (id(instance), mapping[kind])
    if key in active:  # the mapped schema is allOf [this one, ...]: do not loop
        return
    active.add(key)
    try:
        yield from validator.descend(instance, {"$ref": mapping[kind]})
    finally:
        active.discard(key)


_ACTIVE_DISCRIMINATIONS: set[tuple[int, str]] = set()
_OpenApiValidator = validators.extend(Draft202012Validator, {"discriminator": _discriminator})


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # e.g. /2/users/{id}/tweets
    spec: Mapping[str, Any]

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId"))


class OpenApi:
    """One OpenAPI 3.0 document; schemas are checked with JSON Schema 2020-12 semantics (close
    to OpenAPI 3.0's: `nullable` rewritten, `discriminator` enforced, `format` not asserted
    except `date-time` on query parameters)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.version = str(document["info"]["version"])
        contents = _nullable_as_type(copy.deepcopy(dict(document)))
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
        self._contents = contents

    @classmethod
    @functools.cache
    def x(cls, version: str) -> OpenApi:
        return cls(json.loads((SPECS / "x" / f"openapi-{version}.json").read_text()))

    # ---- look-ups

    def resolve(self, node: Any) -> Any:
        """`node` with its local `$ref` followed (repeatedly), from the prepared document."""
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"].removeprefix("#/").split("/")
            node = functools.reduce(lambda at, key: at[key], pointer, self._contents)
        return node

    def schema(self, name: str) -> Mapping[str, Any]:
        return self.resolve({"$ref": f"#/components/schemas/{name}"})  # type: ignore[no-any-return]

    def operation(self, method: str, path: str) -> Operation | None:
        for template, item in self.document["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and method.lower() in item:
                return Operation(method.upper(), template, item[method.lower()])
        return None

    def parameters(self, operation: Operation) -> dict[tuple[str, str], Mapping[str, Any]]:
        """`(in, name) -> parameter object` of an operation."""
        out = {}
        for raw in operation.spec.get("parameters", []):
            parameter = self.resolve(raw)
            out[(parameter["in"], parameter["name"])] = parameter
        return out

    def query_enum(self, operation: Operation, name: str) -> frozenset[str]:
        """The allowed values of a list-valued query parameter."""
        schema = self.resolve(self.parameters(operation)[("query", name)]["schema"])
        return frozenset(self.resolve(schema["items"]).get("enum", ()))

    # ---- validation

    def errors(self, instance: Any, schema: Mapping[str, Any]) -> list[str]:
        """Every violation of `schema` (refs resolve in this document), as readable lines."""
        validator = _OpenApiValidator(_rebase(schema), registry=self._registry)
        return sorted(
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in validator.iter_errors(instance)
        )

    def check_request(self, method: str, url: str) -> list[str]:
        """Why this GET/POST is not a request the document describes (empty: it is)."""
        parts = urlsplit(url)
        operation = self.operation(method, parts.path)
        if operation is None:
            return [f"{method} {parts.path}: no such operation in OpenAPI {self.version}"]
        declared = self.parameters(operation)
        problems: list[str] = []
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        names = [name for name, _ in pairs]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"query parameter {name} repeated")
        for (where, name), parameter in declared.items():
            if where == "query" and parameter.get("required") and name not in names:
                problems.append(f"required query parameter {name} missing")
        template_parts = operation.template.split("/")
        for segment, actual in zip(template_parts, parts.path.split("/"), strict=True):
            if segment.startswith("{"):
                parameter = declared[("path", segment.strip("{}"))]
                problems += [f"path {segment}: {e}" for e in self._value_errors(parameter, actual)]
        for name, raw in pairs:
            parameter = declared.get(("query", name))
            if parameter is None:
                known = sorted(n for w, n in declared if w == "query")
                problems.append(f"query parameter {name} is not one of {known}")
                continue
            problems += [f"{name}={raw}: {e}" for e in self._value_errors(parameter, raw)]
        return [f"{operation.operation_id} ({self.version}): {p}" for p in problems]

    def _value_errors(self, parameter: Mapping[str, Any], raw: str) -> list[str]:
        schema = self.resolve(parameter["schema"])
        value: Any = raw
        if schema.get("type") == "array":
            if parameter.get("explode", parameter.get("style", "form") == "form") and (
                parameter["in"] == "query"
            ):
                return [f"exploded array parameters are not supported here ({raw})"]
            value = raw.split(",")
            item = self.resolve(schema.get("items", {}))
            if item.get("type") == "integer":
                value = [int(v) if v.lstrip("-").isdigit() else v for v in value]
        elif schema.get("type") == "integer":
            value = int(raw) if raw.lstrip("-").isdigit() else raw
        errors = self.errors(value, parameter["schema"])
        if schema.get("format") == "date-time" and not _DATE_TIME.fullmatch(raw):
            errors.append(f"{raw!r} is not an RFC 3339 date-time")
        return errors

    def response_schema(
        self, operation: Operation, status: int, content_type: str
    ) -> Mapping[str, Any] | None:
        responses = operation.spec["responses"]
        response = self.resolve(responses.get(str(status)) or responses.get("default") or {})
        content = response.get("content") or {}
        media = content_type.split(";")[0].strip()
        chosen = content.get(media)
        return None if chosen is None else chosen.get("schema")

    def undeclared(self, instance: Any, schema: Mapping[str, Any], path: str = "") -> set[str]:
        """Paths of object keys no schema along the way declares (a closed-world check the
        documents do not make themselves: they rarely say `additionalProperties: false`).
        Objects whose schema names no properties at all are open."""
        found: set[str] = set()
        properties, items = self._shape(schema, instance)
        if isinstance(instance, dict) and properties is not None:
            for key, value in instance.items():
                where = f"{path}.{key}" if path else key
                if key not in properties:
                    found.add(where)
                else:
                    for sub in properties[key]:
                        found |= self.undeclared(value, sub, where)
        elif isinstance(instance, list) and items:
            for value in instance:
                for sub in items:
                    found |= self.undeclared(value, sub, f"{path}[]")
        return found

    def _shape(
        self, schema: Mapping[str, Any], instance: Any
    ) -> tuple[dict[str, list[Mapping[str, Any]]] | None, list[Mapping[str, Any]]]:
        """The declared properties (name -> schemas) and array item schemas of `schema`,
        through allOf / oneOf / anyOf and discriminator mappings."""
        properties: dict[str, list[Mapping[str, Any]]] | None = None
        items: list[Mapping[str, Any]] = []
        stack = [self.resolve(schema)]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in seen or not isinstance(node, dict):
                continue
            seen.add(id(node))
            if "properties" in node:
                properties = properties or {}
                for name, sub in node["properties"].items():
                    properties.setdefault(name, []).append(sub)
            if "items" in node:
                items.append(node["items"])
            for key in ("allOf", "oneOf", "anyOf"):
                stack += [self.resolve(sub) for sub in node.get(key, [])]
            discriminator = node.get("discriminator")
            if discriminator and isinstance(instance, dict):
                mapped = (discriminator.get("mapping") or {}).get(
                    instance.get(discriminator["propertyName"])
                )
                if mapped:
                    stack.append(self.resolve({"$ref": mapped}))
        return properties, items


def _rebase(node: Any) -> Any:
    """`node` with its document-local refs (`$ref`, discriminator mappings) made absolute, so
    that it can be evaluated from outside the document."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#"):
                out[key] = _SPEC_URI + value
            elif key == "discriminator" and isinstance(value, dict):
                mapping = {k: _SPEC_URI + v for k, v in (value.get("mapping") or {}).items()}
                out[key] = {**value, "mapping": mapping}
            else:
                out[key] = _rebase(value)
        return out
    if isinstance(node, list):
        return [_rebase(item) for item in node]
    return node


# --------------------------------------------------------------------------- Meta


@dataclass(frozen=True)
class MetaNode:
    name: str
    fields: frozenset[str]
    edges: Mapping[str, Mapping[str, Any]]  # GET edge name -> its API object
    read: Mapping[str, Any] | None  # the node's own GET (endpoint None)

    def edge_params(self, edge: str) -> dict[str, str]:
        """`param name -> type` of a GET edge."""
        return {p["name"]: p["type"] for p in self.edges[edge].get("params", [])}


class MetaSpec:
    """Meta's node descriptions (facebook-business-sdk-codegen `api_specs/specs`)."""

    def __init__(self) -> None:
        enums = json.loads((SPECS / "meta" / "enum_types.json").read_text())
        self.enums: dict[str, frozenset[str]] = {
            entry["name"]: frozenset(entry["values"]) for entry in enums
        }

    @functools.cache  # noqa: B019 - one instance per test session
    def node(self, name: str) -> MetaNode | None:
        path = SPECS / "meta" / f"{name}.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        edges = {
            api["endpoint"]: api
            for api in raw.get("apis", [])
            if api.get("method") == "GET" and api.get("endpoint")
        }
        read = next(
            (a for a in raw.get("apis", []) if a.get("method") == "GET" and not a.get("endpoint")),
            None,
        )
        return MetaNode(name, frozenset(f["name"] for f in raw.get("fields", [])), edges, read)

    def enum_of(self, type_name: str) -> frozenset[str] | None:
        """The values of `list<x>` / `x` when x is an enum type, else None."""
        inner = type_name.removeprefix("list<").removesuffix(">")
        return self.enums.get(inner)
