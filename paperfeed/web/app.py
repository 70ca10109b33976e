"""The web application: server-rendered pages, a JSON API under /api/ and Atom feeds.

``create_app(settings, store=None)`` builds it; ``paperfeed serve`` runs it with uvicorn.
Nothing here talks SQL: pages, API and feeds call the store and the search and rank
packages, exactly as the CLI does.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import DEFAULT_SECRET, Settings, load_settings
from ..errors import ConfigError, InputError, NotFoundError, PaperfeedError
from ..search.follow import IndexFollower
from ..store import Store, open_store
from . import account, api, api_readers, digest_pages, feeds, pages
from .render import make_env
from .auth import VisitorCookies
from .security import SecurityHeaders
from .views import TrendingCache

__all__ = ["create_app", "app_from_env", "require_secret"]

log = logging.getLogger("paperfeed.web")

STATIC = Path(__file__).parent / "static"

_REASONS = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    414: "Address too long",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Server error",
    503: "Unavailable",
}


def _version() -> str:
    try:
        return version("paperfeed")
    except PackageNotFoundError:
        return "0"


def require_secret(settings: Settings) -> None:
    """ConfigError unless ``secret`` is set to a value of the site's own."""
    if settings.secret == DEFAULT_SECRET or len(settings.secret) < 16:
        raise ConfigError(
            "the web app needs a secret of its own (16 characters or more): set "
            "PAPERFEED_SECRET to a long random value, e.g. the output of "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`; '
            "scripts/run.sh makes one for you in paperfeed.secret"
        )


def _limit_threads(settings: Settings) -> None:
    """BLAS (vector maths in numpy) follows the ``threads`` setting as the embedder does."""
    if not settings.threads:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it BLAS keeps its default
        return
    threadpool_limits(settings.threads)


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """The app over ``store`` (opened from ``settings.db`` when not given, and then closed
    with the app). Refuses the default ``secret``: sessions, CSRF tokens and every link in a
    mail are signed with it, and a known secret would let anyone forge them."""
    require_secret(settings)
    _limit_threads(settings)
    own_store = store is None
    if store is None:
        store = open_store(
            settings.db, busy_timeout=settings.busy_timeout, pool_size=settings.db_pool_size
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # New papers reach the keyword index (SQLite), and new vectors this process's memory
        # (PostgreSQL, where the database indexes words itself), from this thread, never
        # from a request.
        follower = None
        if settings.web_index_every > 0:
            follower = IndexFollower(store, settings, settings.web_index_every)
            follower.start()
        app.state.index_follower = follower
        yield
        if follower is not None:
            follower.stop()
        if own_store:
            store.close()

    app = FastAPI(
        title="paperfeed",
        version=_version(),
        description="Research papers: trending, daily listings, search, similar papers.",
        # Swagger UI and ReDoc load from a CDN; the schema alone is served, from here.
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.env = make_env()
    app.state.trending = TrendingCache()
    app.add_middleware(VisitorCookies, secure=settings.base_url.startswith("https://"))
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api_readers.router)  # /api/me before /api's catch-all paper paths
    app.include_router(api.router)
    app.include_router(digest_pages.api_router)
    app.include_router(digest_pages.router)
    app.include_router(account.router)  # /feeds/for-you/... and the readers' pages
    app.include_router(feeds.router)
    app.include_router(pages.router)
    _install_error_pages(app)
    api.document_limits(app, settings)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings come from the environment, which
    ``paperfeed serve`` fills from its own settings before starting the workers."""
    return create_app(load_settings())


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, message: str, details: list[str] | None = None):
    """The 404/422/... answer: JSON under /api/, a page (with the search box) elsewhere."""
    if _wants_json(request):
        # Every error has this one shape (api.ErrorOut, documented on every route).
        body = {"detail": message, "errors": list(details or [])}
        return JSONResponse(body, status_code=status)
    html = request.app.state.env.get_template("error.html").render(
        request_path=request.url.path,
        status=status,
        reason=_REASONS.get(status, "Error"),
        message=message,
        details=details or [],
    )
    return HTMLResponse(html, status_code=status)


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else _REASONS.get(exc.status_code, "")
        if exc.status_code == 404 and message == "Not Found":
            message = "There is no page at this address."
        resp = error_response(request, exc.status_code, message)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        details = []
        for err in exc.errors()[:10]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path"))
            details.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return error_response(request, 422, "Some parameters are not valid.", details)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError):
        return error_response(request, 404, str(exc))

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError):
        return error_response(request, 422, str(exc))

    @app.exception_handler(PaperfeedError)
    async def unavailable(request: Request, exc: PaperfeedError):
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_response(request, 503, str(exc))
