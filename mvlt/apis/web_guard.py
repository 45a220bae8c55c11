"""Which ``Host`` and ``Origin`` a search page answers (DNS rebinding).

A page bound to 127.0.0.1 is still reachable from a browser through a
foreign name that resolves to 127.0.0.1 (DNS rebinding); such requests carry
that name in ``Host`` and the foreign page's ``Origin``. The page answers
only the names it is served under (loopback names, plus ``--host`` and any
``--allowed-host``) and refuses requests from other origins, so no response
(and no CORS grant of gradio's middleware) reaches a foreign page
(gradio PR #7503, CVE-2024-1727).
"""
from typing import Iterable, List
from urllib.parse import urlsplit

#: Names of this machine a local browser uses.
LOOPBACK_HOSTS = ('localhost', '127.0.0.1', '::1', '[::1]')
#: Listening addresses that name no host (every interface).
WILDCARD_HOSTS = ('', '0.0.0.0', '::', '[::]')


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> List[str]:
    """Loopback names, the listening ``host`` unless it is a wildcard, and
    ``extra`` names (e.g. the server's DNS name behind ``--host
    0.0.0.0``)."""
    names = list(LOOPBACK_HOSTS)
    for name in [host, *extra]:
        name = (name or '').strip().lower()
        if name not in WILDCARD_HOSTS and name not in names:
            names.append(name)
    return names


def _origin_host(origin: str) -> str:
    """The host name of an ``Origin`` header ('' for ``null`` or junk)."""
    try:
        return (urlsplit(origin).hostname or '').lower()
    except ValueError:
        return ''


def guard_hosts(app, hosts: List[str]) -> None:
    """Refuse requests to other ``Host`` names (400, Starlette's
    ``TrustedHostMiddleware``) and from other origins (403, JSON error).

    Args:
        app: The FastAPI / Starlette app (the page mounted in it).
        hosts: Accepted host names (:func:`allowed_hosts`).
    """
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import JSONResponse

    accepted = {h.strip('[]') for h in hosts}

    @app.middleware('http')
    async def same_origin_only(request, call_next):
        origin = request.headers.get('origin')
        if origin is not None and _origin_host(origin) not in accepted:
            return JSONResponse(
                {
                    'error':
                    f'Requests from {origin} are refused: this page answers '
                    'only its own origin.'
                },
                status_code=403)
        return await call_next(request)

    # Added last: outermost, so a foreign Host is refused first.
    app.add_middleware(
        TrustedHostMiddleware, allowed_hosts=list(hosts), www_redirect=False)
