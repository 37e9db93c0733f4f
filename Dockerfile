# The headless watcher in a container: probes, detects, writes every alert to the store, pages.
#   docker build -t mlops-console .
#   docker run -d -v mlops-data:/var/lib/mlops-console -v ./config.toml:/etc/mlops-console/config.toml:ro \
#     -e SLACK_TOKEN mlops-console
# examples/compose/ runs it beside a Prometheus that scrapes its metrics.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/mlops-console
COPY pyproject.toml README.md ./
COPY console ./console
COPY plugins ./plugins
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/mlops-console --shell /usr/sbin/nologin console \
    && mkdir -p /var/lib/mlops-console /etc/mlops-console \
    && chown console:console /var/lib/mlops-console

# The store (alerts, outbox, audit trail, detector baselines) lives on the volume: a new container
# picks up the open alerts and baselines of the one it replaces, and pages nothing twice.
ENV MLOPS_CONSOLE_CONFIG=/etc/mlops-console/config.toml \
    XDG_DATA_HOME=/var/lib \
    HOME=/var/lib/mlops-console
VOLUME ["/var/lib/mlops-console"]
USER 10001

# Healthy while a watcher holds the store's lease and keeps writing its health (running or degraded);
# stalled, failed or gone is unhealthy. Reads the store only: it probes nothing.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["mlops-console", "health"]

# SIGTERM (docker stop) flushes pending writes and exits 0.
ENTRYPOINT ["mlops-console"]
CMD ["watch", "--log-format", "json"]
