# speakerd container image.
#
#   docker build -t speakerd:0.1.0 .
#   docker run -d --name speakerd --network host \
#       --cap-drop ALL --cap-add NET_BIND_SERVICE --cap-add NET_ADMIN --cap-add NET_RAW \
#       -v /etc/speakerd:/etc/speakerd:ro -v speakerd-state:/var/lib/speakerd \
#       speakerd:0.1.0 --node "$(hostname)" --socket /run/speakerd/speakerd.sock --metrics :7473
#
# Base image.  BASE_IMAGE is any Debian bookworm userland; the default is the
# public debian:bookworm-slim.  Python is Debian's python3 (3.11) in both
# stages, so an image built on a locally made base (lab/make-base-image.sh:
# debootstrap --variant=minbase bookworm + docker import) is the same image:
#   docker build --network host --build-arg BASE_IMAGE=local/debian:bookworm -t speakerd:0.1.0 .
# The build needs the Debian archive and PyPI; nothing is pulled at run time.
#
# Capabilities.  The daemon runs as an unprivileged user (speakerd, uid 10001)
# and needs
#   CAP_NET_BIND_SERVICE  listening on TCP 179 (any port below 1024);
#   CAP_NET_RAW           SO_BINDTODEVICE (VRF/device binding), raw/packet sockets;
#   CAP_NET_ADMIN         socket marks, netlink route/address queries with changes.
# (TCP-MD5, TCP_MD5SIG, needs no capability.)
# Neither Docker nor Kubernetes raise ambient capabilities for a non-root user:
# --cap-add / securityContext.capabilities.add only put them in the bounding
# set.  So the image carries a private copy of the interpreter,
# /opt/speakerd/bin/speakerd-python, with exactly those three as file
# capabilities (cap_...=ep); only the daemon runs with it (speakerctl, `speakerd
# check` and every other python in the image stay capability-free).
# Consequences, on purpose:
#   * the runtime must allow all three (--cap-add / capabilities.add), otherwise
#     the kernel refuses to exec the interpreter ("Operation not permitted")
#     instead of starting a speaker that cannot bind port 179 or set a key;
#   * no_new_privs should be off (Kubernetes allowPrivilegeEscalation: true,
#     no --security-opt no-new-privileges): under no_new_privs the kernel
#     grants file capabilities only if the launching process already held
#     them, which depends on the container runtime.
# The alternative -- running as uid 0 with every capability but these three
# dropped -- works with no_new_privs but gives the process root's file access;
# to use it anyway: docker run --user 0 ... (the entrypoint is the same).
#
# Other commands: docker run --rm --entrypoint speakerd IMAGE check -c /etc/speakerd
# (speakerd and speakerctl are on PATH).

ARG BASE_IMAGE=debian:bookworm-slim

# --- base: the runtime's base -- Debian's python3 and the speakerd user -------
FROM ${BASE_IMAGE} AS base
# DL3008: the versions are bookworm's.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
 && groupadd --system --gid 10001 speakerd \
 && useradd --system --uid 10001 --gid speakerd --home-dir /var/lib/speakerd --shell /usr/sbin/nologin speakerd \
 && install -d -o speakerd -g speakerd -m 0750 /var/lib/speakerd /run/speakerd \
 && install -d -m 0755 /etc/speakerd

# --- build: a virtualenv with speakerd and its dependencies -------------------
FROM base AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# DL3008: the versions are bookworm's; this stage is thrown away.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv libcap2-bin ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy pip needs its CA: pass the PEM text, e.g.
#   --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)"
# It is trusted in this stage only; the runtime stage never sees it.
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/build-extra.crt \
     && update-ca-certificates >/dev/null; \
    fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
# Dependencies first, from pyproject.toml alone: a change to speakerd's sources
# then rebuilds only the small layer below, not the downloads.
COPY pyproject.toml ./
# The build backend is installed the way pip's build isolation would (newest
# matching release, hence --upgrade over the venv's bundled setuptools).
RUN python3 -m venv /opt/speakerd \
 && python3 -c 'import tomllib; t = tomllib.load(open("pyproject.toml", "rb")); p = t["project"]; \
print("\n".join(p["dependencies"] + p["optional-dependencies"]["netlink"])); \
open("build-requirements.txt", "w").write("\n".join(t["build-system"]["requires"] + ["wheel"]))' \
    > requirements.txt \
 && /opt/speakerd/bin/pip install -r requirements.txt \
 && /opt/speakerd/bin/pip freeze > runtime-freeze.txt \
 && /opt/speakerd/bin/pip install --upgrade -r build-requirements.txt
COPY README.md ./
COPY speakerd ./speakerd
# The venv's python is a symlink to /usr/bin/python3, i.e. the runtime's.  Once
# speakerd is in, everything the build backend brought (not in runtime-freeze.txt)
# leaves the venv, then pip itself: nothing installs anything at run time.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN /opt/speakerd/bin/pip install --no-deps --no-build-isolation . \
 && /opt/speakerd/bin/pip freeze --exclude speakerd | { grep -v -x -F -f runtime-freeze.txt || true; } \
    | sed 's/[ =@].*//' > build-only.txt \
 && /opt/speakerd/bin/pip uninstall -y -r build-only.txt setuptools wheel \
 && /opt/speakerd/bin/pip check \
 && /opt/speakerd/bin/pip uninstall -y pip
# The capable interpreter: the runtime stage's own binary (taken from the base
# stage, so it matches the runtime's standard library even if this stage's apt
# run upgraded python3.11), in the venv's bin/ so that it finds the venv.
COPY --from=base /usr/bin/python3.11 /opt/speakerd/bin/speakerd-python
RUN setcap cap_net_bind_service,cap_net_admin,cap_net_raw=ep /opt/speakerd/bin/speakerd-python

# --- runtime: python3 and the venv; no pip, no compilers, no sources ----------
FROM base
LABEL org.opencontainers.image.title="speakerd" \
      org.opencontainers.image.description="BGP speaker advertising Kubernetes LoadBalancer service IPs" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/speakerd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
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

ENTRYPOINT ["/opt/speakerd/bin/speakerd-python", "-m", "speakerd.cli", "run", "-c", "/etc/speakerd"]
CMD ["--socket", "/run/speakerd/speakerd.sock", "--metrics", ":7473"]

# Last, so that a change to speakerd rebuilds only this step of the runtime stage.
# The file capabilities travel with the copy (security.capability xattr).
COPY --from=build /opt/speakerd /opt/speakerd
