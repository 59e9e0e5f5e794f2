# m2-tools as a streamable-HTTP MCP server (see packaging/README.md).
#   CPU (default):  docker build -t m2-tools .
#   CUDA:           docker build --build-arg VARIANT=cuda -t m2-tools:cuda .
#   Baked weights:  docker build --build-arg MODEL_SRC=models/M2-Reasoning -t m2-tools:baked .
#   Run:            docker run -p 8765:8765 -e M2_AUTH_TOKEN -v /path/to/M2-Reasoning:/models:ro m2-tools

ARG VARIANT=cpu
ARG CPU_BASE=python:3.12-slim-bookworm
ARG CUDA_BASE=nvidia/cuda:12.8.1-base-ubuntu24.04

FROM ${CPU_BASE} AS base-cpu
ENV M2_DEVICE=cpu

FROM ${CUDA_BASE} AS base-cuda
# The CUDA base image has no Python; PyTorch's CUDA wheels bring their own CUDA libraries
# and need only the host's driver (NVIDIA Container Toolkit: docker run --gpus all).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
ENV M2_DEVICE=cuda

# base-cpu or base-cuda above: a stage of this file, not an image to tag.
# hadolint ignore=DL3006
FROM base-${VARIANT} AS runtime
# The same variables as the Makefile's install: the torch requirement, and the wheel index
# it comes from (a CPU wheel index gives a small CPU-only image; empty uses pip's default).
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL=""
# A checkpoint folder inside the build context to bake in; the default holds only a note,
# and the weights come from a volume mounted at /models.
ARG MODEL_SRC=packaging/docker/models

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV VIRTUAL_ENV=/opt/m2-tools \
    PATH=/opt/m2-tools/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/home/m2/.cache/huggingface \
    M2_MODEL=/models

# torch alone first, so that the index choice applies to it and not to the other packages.
# TORCH_SPEC carries the pin (hadolint cannot see through the variable).
# hadolint ignore=DL3013
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"

WORKDIR /tmp/m2-tools-src
COPY pyproject.toml README.md LICENSE ./
COPY m2_tools ./m2_tools
COPY mcp_server ./mcp_server
COPY integrations ./integrations
RUN pip install --no-cache-dir . \
    && rm -rf /tmp/m2-tools-src

COPY packaging/docker/healthcheck.py /usr/local/lib/m2-tools/healthcheck.py
COPY ${MODEL_SRC} /models/
RUN groupadd --gid 10001 m2 \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin m2

USER 10001:10001
WORKDIR /home/m2
EXPOSE 8765
# /healthz needs no token; it turns unhealthy (503) when the model cannot be loaded.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python3", "/usr/local/lib/m2-tools/healthcheck.py"]
# A non-loopback bind: `serve` refuses to start unless M2_AUTH_TOKEN is set (docker run -e).
ENTRYPOINT ["m2-tools"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8765"]
