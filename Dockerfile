# The one image recipe of the four services; SERVICE picks which (deploy/image/services lists
# each one's package, port and server command). Build from the repository root:
#   docker build -f Dockerfile --build-arg SERVICE=estoque-service -t estoque-service .
# SERVICE: api-gateway, pedidos-service, pagamentos-service or estoque-service.
# BASE_IMAGE: any Debian-based image with python3 (>= 3.11) and its venv module;
# `make images` passes a local one, since no image registry is reachable on our machines.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml constraints.txt ./
# The runtime pins of pyproject.toml held to constraints.txt: the same set `make up` runs.
# Before SERVICE is declared, so the four builds share this step's cache.
RUN python3 -m venv /opt/venv \
    && python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-compile -c constraints.txt -r requirements.txt \
    && /opt/venv/bin/pip uninstall --yes --quiet pip
ARG SERVICE
COPY deploy/image/services ./
COPY libs/veloz /src/veloz
COPY ${SERVICE}/ /src/service/
# /app gets the shared package without its dev layer (veloz.dev: the embedded PostgreSQL, the
# local stack, test helpers) and the one package of SERVICE (never its tests/), compiled here:
# the root filesystem is read-only at run time.
RUN package="$(awk -v service="${SERVICE}" '$1 == service { print $2 }' services)" \
    && { [ -n "$package" ] && [ -d "service/$package" ] \
         || { echo "SERVICE='${SERVICE}': give --build-arg SERVICE=<a service in deploy/image/services>" >&2; exit 1; }; } \
    && mkdir /app \
    && cp -R veloz "service/$package" /app/ \
    && rm -rf /app/veloz/dev \
    && python3 -m compileall -q /opt/venv /app

FROM ${BASE_IMAGE}
ARG SERVICE
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin veloz
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY deploy/image/ /opt/veloz/
# VELOZ_SERVICE keys the table at run time (SERVICE_NAME, the name in logs and traces, is
# renamed by the workers started from this image). The entrypoint sets BIND (and the gateway's
# METRICS_BIND, /metrics for Prometheus only, never published) from the table unless given.
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    VELOZ_SERVICE=${SERVICE} SERVICE_NAME=${SERVICE} PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
WORKDIR /app
USER 10001:10001
# No EXPOSE: the port is the table's, not a constant of this file; Compose and the manifests
# name the ports they use.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/opt/veloz/healthcheck.py"]
ENTRYPOINT ["/opt/veloz/entrypoint.sh"]
# `serve`: the table's command for this service; any other command runs as given (the
# workers, the migration one-shot).
CMD ["serve"]
