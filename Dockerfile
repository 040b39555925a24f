# One image, three commands: `rating-api` (the default), `rating-scaler` and
# `rating-activator`.
#
#   docker build -t openclaw/rating-edge:0.1.0 .
#
# The base is the Python release the test suite runs on. The build stage makes
# a virtual environment with the project and its dependencies (the protobuf
# stubs are committed under scaler/_proto, so nothing is generated here); the
# runtime stage gets that virtual environment and nothing else.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# `python3`, not `python`: a base built from Debian's packages has no `python`.
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common ./common
COPY api ./api
COPY scaler ./scaler
COPY activator ./activator
# Every dependency ships manylinux wheels for CPython 3.11, so no compiler is
# needed; pip also compiles the bytecode here, as the runtime filesystem is
# read-only.
RUN /opt/venv/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="openclaw-rating-edge" \
      org.opencontainers.image.description="OpenClaw Rating API Edge: rating-api, rating-scaler and rating-activator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
# A numeric user, so that Kubernetes can verify runAsNonRoot without an
# /etc/passwd entry; the same 10001 the manifests run as.
USER 10001:10001
# 8080 public, 9090 admin (rating-api); 6000 gRPC, 9102 HTTP (rating-scaler);
# 8080 public, 9092 admin (rating-activator).
EXPOSE 8080 9090 6000 9102 9092
CMD ["rating-api"]
