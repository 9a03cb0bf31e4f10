#!/bin/sh
# Removes everything deploy/ installs, nodes included:   sh deploy/uninstall.sh
#
#   1. DaemonSet l7guard/l7guard, waiting until its pods are gone (foreground deletion). Each
#      l7guard removes its own nat chain L7GUARD and the PREROUTING/OUTPUT jumps to it first thing on
#      SIGTERM (`--manage-iptables`, docs/interception.md): from then on that node's traffic goes
#      straight to the pods, unenforced, as with no l7guard at all.
#   2. On every node, belt and braces for an instance that crashed (or was SIGKILLed) and so left its
#      chain: `l7guard iptables cleanup` for chain L7GUARD, and for L7GUARD_REDIRECT, the chain the
#      previous version of deploy/daemonset.yaml wrote by hand (one more iptables-save per backend:
#      cheap, and an upgraded cluster may still have it), on iptables-nft and iptables-legacy both (a
#      backend with no nat table on the node is skipped). A short-lived DaemonSet
#      l7guard/l7guard-uninstall does it (the l7guard image, as root with NET_ADMIN and NET_RAW only,
#      on the host network, every taint tolerated); its log says what each node had, and it fails if
#      a chain is still there. It is deleted once it ran on every node.
#   3. The sidecar example (Deployments and ServiceAccounts labelled app.kubernetes.io/part-of=l7guard
#      in any namespace, ServiceAccount l7guard/l7guard among them): Deployment default/deathstar (the app goes with it: `kubectl apply -f
#      demo/manifests/http-sw-app.yaml` brings the plain one back), ServiceAccount
#      default/deathstar-l7guard, ClusterRoleBinding l7guard-deathstar-sidecar. Its L7GUARD_INBOUND
#      chains were in the pods' own network namespaces: gone with the pods.
#   4. ClusterRoleBinding l7guard, ClusterRole l7guard, Namespace l7guard (ServiceAccount l7guard,
#      the emptyDirs with the admin sockets and anything else in it).
# Not removed: the Star Wars app, its CiliumNetworkPolicies and the Cilium CRDs, which are not
# deploy/'s (docs/kubernetes.md, "Uninstall", removes them).
#
# Environment: KUBECTL (default kubectl), L7GUARD_IMAGE (default l7guard:dev, the image of
# deploy/*.yaml: it must be on the nodes), L7GUARD_UNINSTALL_TIMEOUT (default 180s).
# A node where the cleanup pod cannot run (NotReady, no room) may keep a crashed instance's chain:
# run there, as root (and the same with iptables-legacy if kube-proxy uses it),
#   iptables -t nat -S | sed -n 's/^-A \(PREROUTING\|OUTPUT\) \(.*-j L7GUARD\)$/-D \1 \2/p' | xargs -L1 iptables -t nat
#   iptables -t nat -F L7GUARD; iptables -t nat -X L7GUARD
set -eu

kubectl=${KUBECTL:-kubectl}
image=${L7GUARD_IMAGE:-l7guard:dev}
timeout=${L7GUARD_UNINSTALL_TIMEOUT:-180s}
say() { printf '\n== %s\n' "$*"; }

say "1. DaemonSet l7guard/l7guard and its pods"
$kubectl delete daemonset l7guard -n l7guard --ignore-not-found --cascade=foreground --wait=true --timeout="$timeout"
$kubectl wait --for=delete pod -n l7guard -l app.kubernetes.io/name=l7guard --timeout="$timeout" 2>/dev/null || true

say "2. what a crashed l7guard left on a node: iptables chains L7GUARD (and L7GUARD_REDIRECT, of the previous version)"
if ! $kubectl get namespace l7guard >/dev/null 2>&1; then
  $kubectl create namespace l7guard
  $kubectl label namespace l7guard pod-security.kubernetes.io/enforce=privileged app.kubernetes.io/part-of=l7guard
fi
sed "s|@IMAGE@|$image|" <<'EOF' | $kubectl apply -f -
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: l7guard-uninstall
  namespace: l7guard
  labels:
    app.kubernetes.io/name: l7guard-uninstall
    app.kubernetes.io/part-of: l7guard
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: l7guard-uninstall
  template:
    metadata:
      labels:
        app.kubernetes.io/name: l7guard-uninstall
        app.kubernetes.io/part-of: l7guard
    spec:
      hostNetwork: true
      automountServiceAccountToken: false
      tolerations:
      - operator: Exists
      initContainers:
      - name: cleanup
        image: "@IMAGE@"
        imagePullPolicy: IfNotPresent
        command: ["/bin/sh", "-c"]
        args:
        - |
          set -u
          status=0
          for backend in nft legacy; do
            if ! "iptables-$backend-save" -t nat >/dev/null 2>&1; then
              echo "$NODE_NAME $backend: no nat table, skipped"
              continue
            fi
            for chain in L7GUARD L7GUARD_REDIRECT; do
              if out=$(l7guard iptables cleanup --backend "$backend" --chain "$chain" 2>&1); then
                echo "$NODE_NAME $backend: $out"
              else
                echo "$NODE_NAME $backend: $out" >&2
                status=1
              fi
              if ! l7guard iptables show --backend "$backend" --chain "$chain" 2>&1 | grep -q '^# no chain'; then
                echo "$NODE_NAME $backend: $chain is still there" >&2
                status=1
              fi
            done
          done
          exit "$status"
        env:
        - name: NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        securityContext:
          runAsUser: 0
          runAsGroup: 0
          runAsNonRoot: false
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            add: [NET_ADMIN, NET_RAW]
            drop: [ALL]
        volumeMounts:
        - {name: xtables-lock, mountPath: /run/xtables.lock}
      containers:
      - name: done
        image: "@IMAGE@"
        imagePullPolicy: IfNotPresent
        command: ["sleep", "infinity"]
        securityContext:
          runAsNonRoot: true
          runAsUser: 1000
          runAsGroup: 1000
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop: [ALL]
      volumes:
      - name: xtables-lock
        hostPath: {path: /run/xtables.lock, type: FileOrCreate}
EOF
if $kubectl rollout status daemonset/l7guard-uninstall -n l7guard --timeout="$timeout"; then
  cleaned=1
else
  cleaned=0
fi
$kubectl logs -n l7guard -l app.kubernetes.io/name=l7guard-uninstall -c cleanup --prefix --tail=-1 || true
$kubectl delete daemonset l7guard-uninstall -n l7guard --ignore-not-found --wait=true
if [ "$cleaned" = 0 ]; then
  echo "uninstall: the cleanup did not run on every node within $timeout; a crashed instance's chain may remain (see the top of this script)" >&2
  exit 1
fi

say "3. the sidecar example"
$kubectl delete deployment,serviceaccount --all-namespaces -l app.kubernetes.io/part-of=l7guard --ignore-not-found --wait=true
$kubectl delete clusterrolebinding l7guard-deathstar-sidecar --ignore-not-found

say "4. RBAC and namespace l7guard"
$kubectl delete clusterrolebinding l7guard --ignore-not-found
$kubectl delete clusterrole l7guard --ignore-not-found
$kubectl delete namespace l7guard --ignore-not-found --wait=true
echo
echo "uninstall: done"
