"""Every error the app answers with is problem details (RFC 9457): the app's own problems,
Starlette's HTTP errors, invalid requests, failed runs, and bugs (an id, no traceback)."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from ..errors import VictorError
from .wire import PROBLEM_TYPE, Problem, problem_for

__all__ = ["add_problem_handlers"]


def _response(problem: Problem) -> Response:
    return Response(
        problem.json(),
        status_code=problem.status,
        media_type=PROBLEM_TYPE,
        headers=problem.headers,
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return _response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    return _response(Problem(exc.status_code, title, detail, headers=dict(exc.headers or {})))


async def _on_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
    return _response(Problem(422, "Invalid request", f"{where}: {first['msg']}", errors=errors))


async def _on_error(request: Request, exc: Exception) -> Response:
    # A failed run (VictorError) maps to its status; a bug answers 500 with an id, and
    # Starlette logs the traceback after this answer.
    return _response(problem_for(exc))


def add_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem details."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(VictorError, _on_error)
    app.add_exception_handler(Exception, _on_error)
