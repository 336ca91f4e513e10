"""The operation catalog: every operation of an API description, normalized.

`build_catalog` turns a decoded Swagger 2.0 / OpenAPI 3.0 / 3.1 document into a `Catalog`;
`apiq.specs.parse.parse_spec` does the same from bytes, with the hostile-input checks.
"""

from __future__ import annotations

from apiq.catalog.build import build_catalog, synthesize_operation_id
from apiq.catalog.catalog import Catalog
from apiq.catalog.models import (
    CatalogWarning,
    Operation,
    Parameter,
    ParameterLocation,
    RequestBody,
    Response,
    SecurityScheme,
    Server,
    ServerVariable,
)

__all__ = [
    "Catalog",
    "CatalogWarning",
    "Operation",
    "Parameter",
    "ParameterLocation",
    "RequestBody",
    "Response",
    "SecurityScheme",
    "Server",
    "ServerVariable",
    "build_catalog",
    "synthesize_operation_id",
]
