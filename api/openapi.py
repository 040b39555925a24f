"""The OpenAPI 3.1 document of the public port, written by hand to match `api/batch.py`."""

from __future__ import annotations

from typing import Any

from api import __version__
from api.batch import DEFAULT_CONFIDENCE, MAX_COUNT, MAX_ID_LENGTH, MAX_PRIOR_WEIGHT
from api.config import ApiConfig
from api.problems import ALL_TYPES, PROBLEM_MEDIA_TYPE
from api.ratings import STAR_LEVELS

Json = dict[str, Any]

COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
RATE_LIMIT_HEADERS: Json = {
    "RateLimit-Policy": {
        "description": "The bucket as an IETF RateLimit-Policy (draft-ietf-httpapi-ratelimit-"
        'headers): `"bucket";q=<capacity>;w=<seconds to refill from empty>`, so q/w is the '
        "sustained rate.",
        "schema": {"type": "string"},
        "required": True,
    },
    "RateLimit": {
        "description": '`"bucket";r=<whole tokens left>;t=<seconds until the next token, '
        "0 if one is left>`; on a 429, t equals Retry-After.",
        "schema": {"type": "string"},
        "required": True,
    },
}


def openapi_document(config: ApiConfig) -> Json:
    """The document served at `/openapi.json`, with this process's limits filled in."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OpenClaw Rating API Edge",
            "version": __version__,
            "description": "Rates batches of items. Each pod guards itself with a token bucket "
            f"of {config.bucket_capacity:g} tokens refilled at {config.bucket_rate:g} per second; "
            "every POST /v1/rate costs one token, whatever its outcome.",
        },
        "paths": {
            "/v1/rate": {"post": _rate_operation(config)},
            "/healthz": {"get": _probe("healthz", "The process is alive.", ready_only=False)},
            "/readyz": {
                "get": _probe(
                    "readyz", "The pod takes traffic; 503 once it drains.", ready_only=True
                )
            },
            "/openapi.json": {"get": _openapi_operation()},
        },
        "components": {"schemas": _schemas(config)},
    }


def _rate_operation(config: ApiConfig) -> Json:
    return {
        "operationId": "rate",
        "summary": "Rate a batch of items (costs one token)",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RateRequest"}}
            },
        },
        "responses": {
            "200": {
                "description": "The ratings, in the order of the items.",
                "headers": RATE_LIMIT_HEADERS,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/RateResponse"}}
                },
            },
            "400": _problem_response("The body is not valid JSON."),
            "413": _problem_response(
                f"The body is over {config.max_body_bytes} bytes, or the batch over "
                f"{config.max_batch} items."
            ),
            "415": _problem_response("The Content-Type is not application/json."),
            "422": _problem_response(
                "A field is missing, unknown or out of range; `errors` points at it."
            ),
            "429": _problem_response(
                "The bucket is empty: nothing was done. Retry after `Retry-After` seconds.",
                retry_after=True,
            ),
        },
    }


def _problem_response(description: str, *, retry_after: bool = False) -> Json:
    headers: Json = dict(RATE_LIMIT_HEADERS)
    if retry_after:
        headers["Retry-After"] = {
            "description": "Whole seconds until a token is due, at least 1.",
            "schema": {"type": "integer", "minimum": 1},
            "required": True,
        }
    return {
        "description": description,
        "headers": headers,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _probe(name: str, description: str, *, ready_only: bool) -> Json:
    status = {"$ref": "#/components/schemas/Status"}
    responses: Json = {
        "200": {"description": description, "content": {"application/json": {"schema": status}}}
    }
    if ready_only:
        responses["503"] = {
            "description": "Shutting down: finishing in-flight requests.",
            "content": {"application/json": {"schema": status}},
        }
    return {"operationId": name, "summary": description, "responses": responses}


def _openapi_operation() -> Json:
    return {
        "operationId": "openapi",
        "summary": "This document.",
        "responses": {
            "200": {
                "description": "OpenAPI 3.1",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }


def _schemas(config: ApiConfig) -> Json:
    return {
        "RateRequest": _rate_request(config),
        "VoteItem": _vote_item(),
        "StarItem": _star_item(),
        "RateResponse": _rate_response(),
        "VoteRating": _vote_rating(),
        "StarRating": _star_rating(),
        "Problem": _problem(),
        "Status": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok", "ready", "draining"]}},
        },
    }


def _rate_request(config: ApiConfig) -> Json:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["items"],
        "properties": {
            "confidence": {
                "type": "number",
                "exclusiveMinimum": 0,
                "exclusiveMaximum": 1,
                "default": DEFAULT_CONFIDENCE,
                "description": "Two-sided confidence of the lower bounds.",
            },
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": config.max_batch,
                "items": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/VoteItem"},
                        {"$ref": "#/components/schemas/StarItem"},
                    ]
                },
            },
        },
        "example": {
            "confidence": 0.95,
            "items": [
                {"id": "agent-42", "up": 42, "down": 7},
                {
                    "id": "skill-7",
                    "stars": [25, 20, 75, 80, 60],
                    "prior": {"mean": 3.5, "weight": 10},
                },
            ],
        },
    }


def _item_id() -> Json:
    return {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}


def _vote_item() -> Json:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "up", "down"],
        "properties": {"id": _item_id(), "up": COUNT, "down": COUNT},
    }


def _star_item() -> Json:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "stars"],
        "properties": {
            "id": _item_id(),
            "stars": {
                "type": "array",
                "items": COUNT,
                "minItems": STAR_LEVELS,
                "maxItems": STAR_LEVELS,
                "description": "Counts of 1, 2, 3, 4 and 5 stars, 1-star first.",
            },
            "prior": {
                "type": "object",
                "additionalProperties": False,
                "required": ["mean", "weight"],
                "description": "Pulls the average towards `mean` by `weight` pseudo-votes.",
                "properties": {
                    "mean": {"type": "number", "minimum": 1, "maximum": 5},
                    "weight": {"type": "number", "minimum": 0, "maximum": MAX_PRIOR_WEIGHT},
                },
            },
        },
    }


def _rate_response() -> Json:
    return {
        "type": "object",
        "required": ["confidence", "ratings"],
        "properties": {
            "confidence": {"type": "number"},
            "ratings": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/VoteRating"},
                        {"$ref": "#/components/schemas/StarRating"},
                    ]
                },
            },
        },
    }


def _vote_rating() -> Json:
    return {
        "type": "object",
        "required": ["id", "kind", "count", "up_share", "lower_bound"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"const": "votes"},
            "count": {"type": "integer", "minimum": 0},
            "up_share": {
                "type": ["number", "null"],
                "description": "up / count; null without votes",
            },
            "lower_bound": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "Wilson score lower bound of the up share: rank by this.",
            },
        },
    }


def _star_rating() -> Json:
    return {
        "type": "object",
        "required": ["id", "kind", "count", "average", "lower_bound"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"const": "stars"},
            "count": {"type": "integer", "minimum": 0},
            "average": {
                "type": ["number", "null"],
                "description": "Bayesian average stars, with the prior if given; null without "
                "votes or prior",
            },
            "lower_bound": {
                "type": "number",
                "description": "Lower bound of the mean under a Dirichlet(1,...,1) prior: "
                "rank by this.",
            },
        },
    }


def _problem() -> Json:
    return {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "enum": [problem.uri for problem in ALL_TYPES]},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["pointer", "detail"],
                    "properties": {
                        "pointer": {"type": "string", "description": "JSON Pointer into the body"},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    }
