# peer-agent image: the agent installed as a wheel, plus the single-file zipapp
# /opt/peer-agent/peer-agent.pyz for copying into other images (any Python >= 3.11; it carries
# bytecode for the base image's Python, see tools/build_zipapp.py).
#   podman build -t peer-agent:0.1.0 .                    # or: make image
#   podman build --build-arg BASE_IMAGE=my-python:3.12 .  # any image with python3 and pip
# Offline builds: put the dependency wheels (and setuptools) into wheelhouse/ and pass
#   --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/src/wheelhouse
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
# pip reads these from the environment; empty means "use the index".
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY . .
# The wheel and every dependency as wheels, so the final stage installs without an index.
RUN python3 -m pip wheel -q -w /dist . \
 && python3 tools/build_zipapp.py -o /dist/peer-agent.pyz --find-links /dist /dist/peer_agent-*.whl

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="peer-agent" \
      org.opencontainers.image.description="Barrier for the pods of a Kubernetes Indexed Job: finds peers by DNS, probes them, releases when everyone reaches everyone." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# PIP_BREAK_SYSTEM_PACKAGES: a Debian base marks its Python externally managed; this image is
# ours alone, so installing into it is what we want. --compile: the bytecode is written now, at
# build time; a read-only root filesystem cannot hold a __pycache__ written at run time, and
# compiling every module in memory at each start tripled the start-up CPU.
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --no-index --no-cache-dir --compile \
      --disable-pip-version-check --root-user-action=ignore --find-links /dist peer-agent \
 && mkdir -p /opt/peer-agent \
 && cp /dist/peer-agent.pyz /opt/peer-agent/peer-agent.pyz \
 && chmod 0755 /opt/peer-agent/peer-agent.pyz
# Numeric, so that `runAsNonRoot` can verify it without a passwd entry.
USER 65532:65532
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 29300/tcp 29301/tcp
ENTRYPOINT ["peer-agent"]
CMD ["--help"]
