# syntax=docker/dockerfile:1
# speakerd container image.
#
#   docker build -t speakerd:0.1.0 .
#   docker run -d --name speakerd --network host \
#       --cap-drop ALL --cap-add NET_BIND_SERVICE --cap-add NET_ADMIN --cap-add NET_RAW \
#       -v /etc/speakerd:/etc/speakerd:ro -v speakerd-state:/var/lib/speakerd \
#       speakerd:0.1.0 --node "$(hostname)" --socket /run/speakerd/speakerd.sock --metrics :7473
#
# Capabilities.  The daemon runs as an unprivileged user (speakerd, uid 10001)
# but needs CAP_NET_BIND_SERVICE (port 179), CAP_NET_RAW (SO_BINDTODEVICE, BFD
# TTL checks) and CAP_NET_ADMIN (socket marks, netlink).  Neither Docker nor
# Kubernetes raise ambient capabilities for a non-root user: --cap-add /
# securityContext.capabilities.add only put them in the bounding set.  So the
# image carries a private copy of the interpreter, /usr/local/bin/speakerd-python,
# with exactly those three as file capabilities (cap_...=ep); only the daemon
# runs with it (speakerctl and every other python in the image stay
# capability-free).  Consequences, on purpose:
#   * the runtime must allow all three (--cap-add / capabilities.add), otherwise
#     the kernel refuses to exec the interpreter ("Operation not permitted")
#     instead of starting a speaker that cannot bind port 179;
#   * no_new_privs should be off (Kubernetes allowPrivilegeEscalation: true,
#     no --security-opt no-new-privileges): under no_new_privs the kernel
#     grants file capabilities only if the launching process already held
#     them, which depends on the container runtime.
# The alternative -- running as uid 0 with every capability but these three
# dropped -- works with no_new_privs but gives the process root's file access;
# to use it anyway: docker run --user 0 ... (the entrypoint is the same).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: wheels for speakerd and its dependencies --------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY speakerd ./speakerd
RUN pip wheel --wheel-dir /wheels '.[netlink]'

# --- runtime: the wheels installed, no compilers, no sources ------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="speakerd" \
      org.opencontainers.image.description="BGP speaker advertising Kubernetes LoadBalancer service IPs" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# DL3013: --no-index installs exactly the wheels built above.  DL3008:
# libcap2-bin only runs setcap and is purged in this same layer.
# hadolint ignore=DL3008,DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels 'speakerd[netlink]' \
 && apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && cp /usr/local/bin/python3.11 /usr/local/bin/speakerd-python \
 && setcap cap_net_bind_service,cap_net_admin,cap_net_raw=ep /usr/local/bin/speakerd-python \
 && apt-get purge -y --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 speakerd \
 && useradd --system --uid 10001 --gid speakerd --home-dir /var/lib/speakerd --shell /usr/sbin/nologin speakerd \
 && install -d -o speakerd -g speakerd -m 0750 /var/lib/speakerd /run/speakerd \
 && install -d -m 0755 /etc/speakerd

# manifests (read-only is fine); allocation state (state.json)
VOLUME ["/etc/speakerd", "/var/lib/speakerd"]
# Prometheus metrics; BGP itself is TCP 179 on the host network
EXPOSE 7473
# numeric, so Kubernetes runAsNonRoot can verify it without /etc/passwd
USER 10001:10001
WORKDIR /var/lib/speakerd
STOPSIGNAL SIGTERM

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["speakerctl", "--socket", "/run/speakerd/speakerd.sock", "health"]

ENTRYPOINT ["/usr/local/bin/speakerd-python", "-m", "speakerd.cli", "run", "-c", "/etc/speakerd"]
CMD ["--socket", "/run/speakerd/speakerd.sock", "--metrics", ":7473"]
