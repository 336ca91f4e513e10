"""A live Petstore implementing `petstore-oas30.json` (bundled as `apiq.data`), under `/v2`.

In-memory store seeded by `reset()` (each fixture instance starts fresh): six pets (two
per status), one user `theuser` / `12345`, no orders. Bodies are validated against the
spec's own component schemas (jsonschema, Draft 7 as OpenAPI 3.0 is close to it), and the
status codes are the spec's:

- POST /pet, PUT /pet: JSON Pet (name, photoUrls required) -> 200 pet; invalid -> 405;
  PUT without an integer id -> 400, unknown id -> 404.
- GET /pet/findByStatus?status=...  form explode: repeated `status=` and commas both
  accepted; missing or not available|pending|sold -> 400. GET /pet/findByTags likewise.
- GET, POST (form-urlencoded name/status), DELETE /pet/{petId}: non-integer id -> 400,
  unknown -> 404, invalid form -> 405.
- GET /store/inventory: `api_key` header must equal `service.api_key`, else 401.
- POST /store/order (JSON Order; invalid or unknown petId -> 400), GET/DELETE
  /store/order/{orderId} (non-integer or < 1 -> 400, unknown -> 404).
- POST /user (JSON User with a username, else 400), GET/PUT/DELETE /user/{username}
  (unknown -> 404), GET /user/login?username&password (wrong -> 400), GET /user/logout.
A known path with another method answers 405 with `Allow`.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl

from jsonschema import Draft7Validator

from apiq.testing.services import LoopbackService, Reply, ServiceRequest, json_reply

__all__ = ["PETSTORE_API_KEY", "PETSTORE_USER", "PetstoreService", "petstore_spec"]

PETSTORE_API_KEY = "special-key"
"""The `api_key` header value `GET /store/inventory` accepts by default."""
PETSTORE_USER = ("theuser", "12345")
"""The seeded user's (username, password)."""
STATUSES = ("available", "pending", "sold")


def petstore_spec() -> dict[str, Any]:
    """A fresh copy of the bundled petstore-oas30.json document."""
    text = files("apiq.data").joinpath("petstore-oas30.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


_SPEC = petstore_spec()
_COMPONENTS = _SPEC["components"]
_PATHS: dict[str, dict[str, Any]] = _SPEC["paths"]


def _validator(name: str) -> Draft7Validator:
    return Draft7Validator({"$ref": f"#/components/schemas/{name}", "components": _COMPONENTS})


_VALIDATORS = {name: _validator(name) for name in ("Pet", "Order", "User")}


def _seed_pets() -> dict[int, dict[str, Any]]:
    rows = [
        (1, "doggie", "available", "Dogs", ["friendly"]),
        (2, "kitty", "available", "Cats", ["fluffy"]),
        (3, "rex", "pending", "Dogs", ["guard"]),
        (4, "tweety", "pending", "Birds", []),
        (5, "nemo", "sold", "Fish", ["friendly"]),
        (6, "garfield", "sold", "Cats", ["lazy", "fluffy"]),
    ]
    categories = {"Dogs": 1, "Cats": 2, "Birds": 3, "Fish": 4}
    tag_ids = {"friendly": 1, "fluffy": 2, "guard": 3, "lazy": 4}
    return {
        pet_id: {
            "id": pet_id,
            "category": {"id": categories[category], "name": category},
            "name": name,
            "photoUrls": [f"https://example.com/{name}.png"],
            "tags": [{"id": tag_ids[tag], "name": tag} for tag in tags],
            "status": status,
        }
        for pet_id, name, status, category, tags in rows
    }


def _error(status: int, message: str) -> Reply:
    return json_reply(status, {"code": status, "type": "error", "message": message})


def _int(text: str) -> int | None:
    digits = text[1:] if text.startswith("-") else text
    return int(text) if digits.isascii() and digits.isdigit() else None


def _json_body(request: ServiceRequest, schema: str) -> dict[str, Any] | str:
    """The body as a JSON object valid against `schema`, or a message saying why not."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        return f"expected Content-Type application/json, got {request.headers.get('content-type')}"
    try:
        data = request.json()
    except ValueError as exc:
        return f"body is not JSON: {exc}"
    errors = [error.message for error in _VALIDATORS[schema].iter_errors(data)]
    if errors or not isinstance(data, dict):
        return f"invalid {schema}: {'; '.join(errors) or 'not an object'}"
    return data


class PetstoreService(LoopbackService):
    """The Petstore; `base_url` ends in `/v2` like the spec's server; `spec_url` serves its
    own OpenAPI description (`served_spec`)."""

    def __init__(self, api_key: str = PETSTORE_API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.reset()

    def reset(self) -> None:
        """Forget recorded requests and restore the seeded store."""
        super().reset()
        with self.lock:
            self.pets = _seed_pets()
            self.orders: dict[int, dict[str, Any]] = {}
            self.users: dict[str, dict[str, Any]] = {
                PETSTORE_USER[0]: {
                    "id": 1,
                    "username": PETSTORE_USER[0],
                    "password": PETSTORE_USER[1],
                    "userStatus": 1,
                }
            }
            self.sessions = 0

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v2`."""
        return f"http://127.0.0.1:{self.port}/v2"

    @property
    def spec_url(self) -> str:
        """`http://127.0.0.1:<port>/openapi.json`."""
        return f"http://127.0.0.1:{self.port}/openapi.json"

    def spec(self) -> dict[str, Any]:
        """The spec with `servers` pointing at this live service."""
        spec = petstore_spec()
        spec["servers"] = [{"url": self.base_url}]
        return spec

    def served_spec(self) -> dict[str, Any]:
        """What `GET /openapi.json` answers: `spec()` with every operation secured by the
        `api_key` scheme, the one this service checks (it implements no OAuth server)."""
        spec = self.spec()
        for item in spec["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict):
                    operation["security"] = [{"api_key": []}]
        return spec

    def handle(self, request: ServiceRequest) -> Reply:
        segments = request.segments
        if segments == ["openapi.json"] and request.method == "GET":
            return json_reply(200, self.served_spec())
        if segments[:1] != ["v2"]:
            return _error(404, f"no such path {request.path}; the API is under /v2")
        with self.lock:  # one request at a time: the store is plain dicts
            return self._route(request.method, segments[1:], request)

    def _route(self, method: str, route: list[str], request: ServiceRequest) -> Reply:
        match route:
            case ["pet"] if method in ("POST", "PUT"):
                return self._put_pet(request, create=method == "POST")
            case ["pet", ("findByStatus" | "findByTags") as finder] if method == "GET":
                return self._find(request, "status" if finder == "findByStatus" else "tags")
            case ["pet", pet_id] if method in ("GET", "POST", "DELETE"):
                return self._pet(method, pet_id, request)
            case ["store", "inventory"] if method == "GET":
                if request.headers.get("api_key") != self.api_key:
                    return _error(401, "missing or wrong api_key header")
                counts = {status: 0 for status in STATUSES}
                for pet in self.pets.values():
                    counts[pet.get("status", "available")] += 1
                return json_reply(200, counts)
            case ["store", "order"] if method == "POST":
                order = _json_body(request, "Order")
                if isinstance(order, str):
                    return _error(400, order)
                if "petId" in order and order["petId"] not in self.pets:
                    return _error(400, f"no pet {order['petId']} to order")
                order = {"id": max(self.orders, default=0) + 1, **order}
                order.setdefault("status", "placed")
                order.setdefault("complete", False)
                self.orders[order["id"]] = order
                return json_reply(200, order)
            case ["store", "order", text] if method in ("GET", "DELETE"):
                order_id = _int(text)
                if order_id is None or order_id < 1:
                    return _error(400, f"invalid order id {text!r}")
                if order_id not in self.orders:
                    return _error(404, f"order {order_id} not found")
                if method == "DELETE":
                    del self.orders[order_id]
                    return json_reply(200, {"code": 200, "message": str(order_id)})
                return json_reply(200, self.orders[order_id])
            case ["user"] if method == "POST":
                return self._put_user(request, None)
            case ["user", "login"] if method == "GET":
                query = dict(request.query)
                username, password = query.get("username"), query.get("password")
                user = self.users.get(username or "")
                if user is None or password is None or user.get("password") != password:
                    return _error(400, "invalid username/password supplied")
                self.sessions += 1
                expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
                headers = {"X-Rate-Limit": "5000", "X-Expires-After": expires}
                return json_reply(200, f"logged in user session:{self.sessions}", headers)
            case ["user", "logout"] if method == "GET":
                return json_reply(200, {"code": 200, "message": "ok"})
            case ["user", username] if method in ("GET", "PUT", "DELETE"):
                if username not in self.users:
                    return _error(404, f"user {username!r} not found")
                if method == "PUT":
                    return self._put_user(request, username)
                if method == "DELETE":
                    del self.users[username]
                    return json_reply(200, {"code": 200, "message": username})
                return json_reply(200, self.users[username])
        return self._not_allowed(method, route)

    def _not_allowed(self, method: str, route: list[str]) -> Reply:
        # The most literal spec template matching the path says which methods exist.
        matches = []
        for template, item in _PATHS.items():
            parts = template.split("/")[1:]
            if len(parts) == len(route) and all(
                part.startswith("{") or part == seg for part, seg in zip(parts, route, strict=True)
            ):
                matches.append((sum(not part.startswith("{") for part in parts), item))
        if not matches:
            return _error(404, f"no such path /v2/{'/'.join(route)}")
        item = max(matches, key=lambda match: match[0])[1]
        allowed = [name.upper() for name in item if name != "parameters"]
        if method in allowed:
            return _error(501, f"{method} /v2/{'/'.join(route)} is not implemented here")
        return Reply(405, b"method not allowed", {"Allow": ", ".join(allowed)})

    def _put_pet(self, request: ServiceRequest, *, create: bool) -> Reply:
        pet = _json_body(request, "Pet")
        if not create:
            try:
                pet_id = request.json().get("id")
            except (ValueError, AttributeError):
                pet_id = None
            if isinstance(pet_id, bool) or not isinstance(pet_id, int):
                return _error(400, "invalid ID supplied: the pet needs an integer id")
            if isinstance(pet, str):
                return _error(405, pet)
            if pet_id not in self.pets:
                return _error(404, f"pet {pet_id} not found")
        elif isinstance(pet, str):
            return _error(405, pet)
        else:
            pet = {"id": max(self.pets, default=0) + 1, **pet}
        self.pets[pet["id"]] = pet
        return json_reply(200, pet)

    def _put_user(self, request: ServiceRequest, username: str | None) -> Reply:
        user = _json_body(request, "User")
        if isinstance(user, str):
            return _error(400, user)
        name = user.get("username", username)
        if not isinstance(name, str) or not name:
            return _error(400, "invalid User: a username is required")
        if username is not None and name != username:
            del self.users[username]
        self.users[name] = {"id": len(self.users) + 1, **user, "username": name}
        return json_reply(200, self.users[name])

    def _find(self, request: ServiceRequest, name: str) -> Reply:
        wanted = {v for k, value in request.query if k == name for v in value.split(",") if v}
        if not wanted:
            return _error(400, f"query parameter {name!r} is required")
        if name == "status":
            if not wanted <= set(STATUSES):
                return _error(400, f"invalid status value {sorted(wanted - set(STATUSES))}")
            found = [p for p in self.pets.values() if p.get("status") in wanted]
        else:
            found = [
                p for p in self.pets.values() if wanted & {t.get("name") for t in p.get("tags", [])}
            ]
        return json_reply(200, sorted(found, key=lambda p: p["id"]))

    def _pet(self, method: str, text: str, request: ServiceRequest) -> Reply:
        pet_id = _int(text)
        if pet_id is None:
            return _error(400, f"invalid ID supplied: {text!r} is not an integer")
        pet = self.pets.get(pet_id)
        if pet is None:
            return _error(404, f"pet {pet_id} not found")
        if method == "GET":
            return json_reply(200, pet)
        if method == "DELETE":
            del self.pets[pet_id]
            return json_reply(200, {"code": 200, "message": str(pet_id)})
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return _error(405, f"expected a form-urlencoded body, got {content_type!r}")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("status", "available") not in STATUSES:
            return _error(405, f"invalid status {form['status']!r}")
        updated = copy.deepcopy(pet)
        updated.update({k: v for k, v in form.items() if k in ("name", "status")})
        self.pets[pet_id] = updated
        return json_reply(200, updated)
