# Modellix proxy: slim, non-root, with a health check.
# Build:  docker build -t modellix-proxy .
# Run:    docker run -p 8080:8080 -p 9464:9464 -e MODELLIX_PROXY_ADMIN__TOKEN=... modellix-proxy
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
RUN python -m venv /opt/modellix-proxy \
 && /opt/modellix-proxy/bin/pip install --upgrade pip \
 && /opt/modellix-proxy/bin/pip install . \
 && /opt/modellix-proxy/bin/modellix-proxy --version

FROM python:3.11-slim
LABEL org.opencontainers.image.title="modellix-proxy" \
      org.opencontainers.image.description="Cost-governance and observability proxy for the Modellix API"
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/modellix-proxy --create-home proxy
COPY --from=build /opt/modellix-proxy /opt/modellix-proxy
ENV PATH=/opt/modellix-proxy/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODELLIX_PROXY_LISTEN__HOST=0.0.0.0 \
    MODELLIX_PROXY_LISTEN__PORT=8080 \
    MODELLIX_PROXY_ADMIN__HOST=0.0.0.0 \
    MODELLIX_PROXY_ADMIN__PORT=9464 \
    MODELLIX_PROXY_STORE__URL=sqlite:////var/lib/modellix-proxy/ledger.db
USER proxy
WORKDIR /var/lib/modellix-proxy
VOLUME ["/var/lib/modellix-proxy"]
EXPOSE 8080 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["modellix-proxy"]
CMD ["serve"]
