# l7guard's image: docker build -t l7guard:dev .   (docs/kubernetes.md; deploy/*.yaml use l7guard:dev)
#
# The build steps are deploy/image/build.sh, which deploy/image/check.sh runs and smoke-tests
# without a container runtime (CI: .ci/run "image recipe").
#
# Root and capabilities: the image runs as `node` (uid 1000, gid 1000), which is all `l7guard serve`
# needs to listen on unprivileged ports and talk to the API server with its service account. What
# needs root is iptables (capabilities of a non-root process are not effective without ambient
# capabilities, which Kubernetes does not set):
#   - deploy/daemonset.yaml: `serve --manage-iptables` reconciles its nat chain on every revision,
#     and its `iptables` init container runs `l7guard iptables cleanup` first; both run as uid 0
#     with NET_ADMIN + NET_RAW only, everything else dropped (docs/interception.md says what uid 0
#     means for the OUTPUT jump);
#   - deploy/sidecar-deathstar.yaml's `redirect` init container (in the pod's own namespace);
#   - deploy/uninstall.sh's per-node cleanup.
# Every other container gets runAsNonRoot: true, runAsUser: 1000 (numeric: the kubelet cannot check
# that the user name `node` is not root), allowPrivilegeEscalation: false, readOnlyRootFilesystem
# and no capabilities (test/deploy/manifests.test.ts checks it).
# `l7guard demo` binds port 80 on loopback addresses: as `node` it needs Docker's default
# net.ipv4.ip_unprivileged_port_start=0 (true in `docker run`), else root; `demo --netns` needs root.

ARG NODE_MAJOR=20

# Build: dev dependencies, tsc, then the runtime file set with production dependencies only.
FROM node:${NODE_MAJOR}-bookworm AS build
WORKDIR /src
COPY . .
RUN sh deploy/image/build.sh build /src /out

# Runtime.
FROM node:${NODE_MAJOR}-slim
# iptables from Debian (iptables-nft by default; iptables-legacy is in the same package) for
# --manage-iptables, `l7guard iptables cleanup` and the sidecar's redirect init container.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
COPY --from=build /out /opt/l7guard
COPY deploy/image/build.sh /tmp/build.sh
RUN sh /tmp/build.sh link /opt/l7guard /usr/local/bin \
 && rm /tmp/build.sh \
 && l7guard --version
USER node
WORKDIR /home/node
ENTRYPOINT ["l7guard"]
CMD ["--help"]
