# conveyor's container image: `conveyor server` by default, the queue on 0.0.0.0:9324 with its data in the volume
# /var/lib/conveyor.
#
#   docker build -t conveyor:0.1.0 .
#   docker run -p 9324:9324 -v conveyor-data:/var/lib/conveyor conveyor:0.1.0
#
# Clients that reach the server by a name (a Compose service `queue`, a Kubernetes Service) must be allowed by
# that name, or the server refuses them (its guard against DNS rebinding, docs/security.md):
#   docker run -e CONVEYOR_ALLOW_HOSTS=queue ... conveyor:0.1.0
# Every other `conveyor server` option is a CONVEYOR_* variable too (`conveyor server --help`).
#
# The same image runs the other commands, given after the image name (they replace CMD; ENTRYPOINT stays):
#   the worker daemon as a sidecar of a worker app, in the app's network namespace (its localhost):
#     docker run --network container:my-app conveyor:0.1.0 sqsd --worker-queue-url http://queue:9324/000000000000/work --port 8080
#   a whole environment: build FROM this image, add the worker app, and run `up` on it:
#     FROM conveyor:0.1.0
#     COPY --chown=10001:10001 . /srv/app
#     CMD ["up", "/srv/app"]
#   and run it with `docker run --init`: up's worker apps can leave orphans, which PID 1 must reap.
# The HEALTHCHECK below asks `conveyor server`'s /health; under `sqsd` or `up` give the container a check of
# their own (sqsd's --health-port, up's console port) or turn it off (`--no-healthcheck`, Compose `healthcheck:`).

# One base for both stages: the virtualenv's interpreter links to /usr/local/bin/python3.11, which must be the
# same in the final stage. The tag is pinned to a patch release and a Debian release; bump it deliberately.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Build stage: the wheel from the source, installed with its runtime dependencies into /opt/conveyor. pip, build
# and the source stay here.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m pip install "build==1.6.1"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m build --wheel --outdir /dist . \
    && python -m venv /opt/conveyor \
    && /opt/conveyor/bin/pip install /dist/conveyor-*.whl

# Final stage: the same base and only the virtualenv.
FROM ${PYTHON_IMAGE} AS runtime
# The user conveyor (uid and gid 10001: outside the range of the host's own users, and numeric below so that
# Kubernetes' runAsNonRoot can check it) owns the data dir, its home; nothing else in the image is writable to it.
RUN groupadd --system --gid 10001 conveyor \
    && useradd --system --uid 10001 --gid conveyor --home-dir /var/lib/conveyor --no-create-home \
        --shell /usr/sbin/nologin conveyor \
    && install -d -m 0700 -o conveyor -g conveyor /var/lib/conveyor
COPY --from=build /opt/conveyor /opt/conveyor
# CONVEYOR_HOST=0.0.0.0: in a container the server must listen beyond loopback to be reached at all.
# PYTHONDONTWRITEBYTECODE: pip compiled the bytecode at install; the venv is not the user's to write anyway.
# PYTHONUNBUFFERED: log lines reach `docker logs` as they are written.
ENV PATH=/opt/conveyor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONVEYOR_DATA_DIR=/var/lib/conveyor \
    CONVEYOR_HOST=0.0.0.0
WORKDIR /var/lib/conveyor
# A volume, so the queues outlive the container; a new named volume starts with this folder's owner and mode.
VOLUME ["/var/lib/conveyor"]
USER 10001:10001
EXPOSE 9324
# SIGTERM drains: the server finishes open requests and closes the store (seconds); sqsd finishes its POSTs for up
# to its DrainTimeout (30 s): give a sqsd container more than that (`docker stop -t 40`, Compose stop_grace_period).
STOPSIGNAL SIGTERM
# 200 from /health (the store answers) is healthy; anything else, or no answer, is not, and the answer's status
# and cause go to the health log (`docker inspect`). Python's urllib, since the slim base has no curl; no proxy, so
# an HTTP_PROXY set for the app is not asked for 127.0.0.1. It follows CONVEYOR_PORT and CONVEYOR_HEALTH_PATH.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.error, urllib.request as u\nurl = 'http://127.0.0.1:%s%s' % (os.environ.get('CONVEYOR_PORT') or '9324', os.environ.get('CONVEYOR_HEALTH_PATH') or '/health')\ntry:\n    status = u.build_opener(u.ProxyHandler({})).open(url, timeout=4).status\nexcept urllib.error.HTTPError as error:\n    sys.exit('%s: %s %s' % (url, error.code, error.read(500).decode(errors='replace')))\nexcept OSError as error:\n    sys.exit('%s: %s' % (url, error))\nsys.exit(0 if status == 200 else '%s: %s' % (url, status))"]
# Exec form, no shell in between: conveyor is PID 1 and gets `docker stop`'s SIGTERM itself.
ENTRYPOINT ["conveyor"]
CMD ["server"]
