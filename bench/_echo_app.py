"""The framework's ceiling: a bare Starlette endpoint that parses a JSON POST and echoes it.

Run by bench/api_throughput.py under uvicorn with the settings of `rating-api`
(uvloop, httptools, no access log, no lifespan).
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    return Response(orjson.dumps(orjson.loads(await request.body())), media_type="application/json")


app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
