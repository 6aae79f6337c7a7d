"""api-gateway application factory."""

from flask import Flask, Request, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import telemetry
from gateway.auth import TokenAuthority
from gateway.backends import build_backends
from gateway.config import GatewaySettings
from gateway.openapi import PlatformDocument
from gateway.proxy import proxy_blueprint, route_template
from gateway.ratelimit import install_rate_limits
from gateway.status import status_blueprint
from veloz.web.app import create_service_app
from veloz.web.context import RequestState
from veloz.web.steps import add_request_step

NAME, VERSION = "api-gateway", "1.0.0"
DESCRIPTION = "Pedidos Veloz: orders, payments and stock, behind one authenticated entry point"


def create_app(settings: GatewaySettings | None = None) -> Flask:
    settings = settings or GatewaySettings.from_env()
    backends = build_backends(settings)
    document = PlatformDocument("Pedidos Veloz API", VERSION, DESCRIPTION, backends=backends,
                                cache_seconds=settings.openapi_cache_seconds)
    app = create_service_app(
        name=NAME, version=VERSION, log_level=settings.log_level,
        max_body_bytes=settings.max_body_bytes, blueprints=[proxy_blueprint()],
        readiness=dict, health=status_blueprint(NAME, VERSION, backends), document=document,
    )
    app.extensions.update(settings=settings, backends=backends,
                          token_authority=TokenAuthority(settings), route_namer=route_template)
    _count_rejections(app)
    install_rate_limits(app, settings)
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app


def _count_rejections(app: Flask) -> None:
    """401/403/429 the gateway answered itself (a relayed backend answer is not counted)."""

    def count(served: Request, state: RequestState, response: Response) -> None:
        if not state.get("relayed"):
            telemetry.record_gateway_rejection(response.status_code)

    add_request_step(app, after=count)
