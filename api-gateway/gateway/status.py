"""The gateway's own routes: what it is, and how it and the services behind it are doing."""

from typing import Literal

from flask import Blueprint
from pydantic import BaseModel

from gateway.backends import Backend, ask_all
from veloz.web.api import operation, respond
from veloz.web.app import add_probes

SERVICE = "Pedidos Veloz - API Gateway"
ENDPOINTS = ["/orders", "/payments", "/items", "/health", "/docs"]
BackendHealth = Literal["healthy", "unhealthy", "unreachable"]


class GatewayInfo(BaseModel):
    service: str
    version: str
    endpoints: list[str]


class GatewayHealth(BaseModel):
    status: Literal["healthy", "degraded"]
    service: str
    backends: dict[str, BackendHealth]


def status_blueprint(name: str, version: str, backends: dict[str, Backend]) -> Blueprint:
    blueprint = Blueprint("gateway", __name__)

    @blueprint.get("/")
    @operation("What this gateway is and where to start", responses={200: GatewayInfo},
               tags=["gateway"])
    def root():
        return respond(GatewayInfo(service=SERVICE, version=version, endpoints=ENDPOINTS))

    @blueprint.get("/health")
    @operation("The gateway and every service behind it; 503 while any is failing",
               responses={200: GatewayHealth, 503: GatewayHealth}, tags=["gateway"])
    def health():
        checks = ask_all(backends, Backend.health)
        healthy = all(state == "healthy" for state in checks.values())
        body = GatewayHealth(status="healthy" if healthy else "degraded", service=name,
                             backends=checks)
        return respond(body, 200 if healthy else 503)

    # Ready means this process can answer. A service being down is answered per call
    # (503/504, breakers); failing readiness for it would pull every gateway replica
    # out of rotation and turn clean problem answers into connection errors.
    add_probes(blueprint, name, ready=lambda: True)
    return blueprint
