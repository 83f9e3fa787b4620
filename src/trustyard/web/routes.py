"""The web interface's routes: its static files and every page module's ``ROUTES`` table, bound to one
``WebInterface`` (no module-level app or globals). ``registry/app.py`` serves them beside ``/v2`` and ``/api/v1``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from trustyard.auth.api import ApiError
from trustyard.errors import TrustyardError
from trustyard.web import images, operations, projects, signin, users
from trustyard.web.interface import FormError, Visit, WebInterface
from trustyard.web.session import CsrfError

__all__ = ["PAGES", "PUBLIC", "web_routes"]

log = logging.getLogger("trustyard.web")
STATIC: Final = Path(__file__).parent / "static"
PageHandler = Callable[[WebInterface, Visit], Awaitable[Response]]
PUBLIC: Final = signin.ROUTES
"""Pages anyone may open (signing in and out)."""
PAGES: Final = (*projects.ROUTES, *images.ROUTES, *operations.ROUTES, *users.ROUTES)
"""Pages behind sign-in, as the API is: (path, methods, handler)."""
BROWSABLE: Final = frozenset(
    {projects.project_list, projects.project_repositories, images.repository, images.image, images.sbom_download}
)
"""Pages (all GET) that also serve visitors without a session: public projects' contents, read-only."""


def _bind(web: WebInterface, handler: PageHandler, *, public: bool) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of one page: the visit resolved, visitors who must sign in sent to do so,
    refusals and CSRF failures as error pages."""

    async def serve(request: Request) -> Response:
        visit = await web.visit(request)
        anonymous = visit.principal is None
        if anonymous and not public and (handler not in BROWSABLE or request.method != "GET"):
            return web.sign_in_first(visit)
        try:
            return await handler(web, visit)
        except FormError as e:
            return await e.redo(web, visit, status=e.status, message=e.message)
        except CsrfError as e:
            return web.error(visit, 403, e.message, "Request refused")
        except ApiError as e:
            if anonymous and not public:  # as the API answers anonymous callers: sign in, whatever the reason
                return web.sign_in_first(visit)
            return web.refused(visit, e)
        except (TrustyardError, SQLAlchemyError) as e:  # the database or storage failed: say so, as a page
            log.error("page %s failed: %s", request.url.path, e)
            return web.error(visit, 503, "The registry cannot answer right now; nothing was changed. Try again.")

    return serve


def web_routes(web: WebInterface) -> list[BaseRoute]:
    """Every route of the interface."""
    found: list[BaseRoute] = [Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
    for table, public in ((PUBLIC, True), (PAGES, False)):
        found += [Route(p, _bind(web, handler, public=public), methods=list(m)) for p, m, handler in table]
    return found
