#!/bin/sh
# Checks the image recipe without a container runtime: runs deploy/image/build.sh (what the
# Dockerfile RUNs) on a copy of the repository in a scratch folder, then smoke-tests the result the
# way the runtime stage runs it: node 20, l7guard on PATH through build.sh's link, a clean
# environment with NODE_ENV=production, the package root-owned and, when this script runs as root,
# the commands run as uid/gid 1000 (the image's `node` user), except the DaemonSet's
# `serve --manage-iptables`, which runs as the DaemonSet runs it: uid 0 with NET_ADMIN and NET_RAW
# only, in a network namespace of its own. One line per check, `ok - ...` or `not ok - ...`, then
# `N passed, N failed`; exit 1 on any failure.
#
#   sh deploy/image/check.sh            (CI: .ci/run "image recipe"; needs node 20, npm, the registry;
#                                        root, ip and iptables for the DaemonSet's args)
#   L7GUARD_CHECK_KEEP=1 sh deploy/image/check.sh   keeps the scratch folder
#
# The copy is what git knows: tracked and untracked-but-not-ignored files present in the work tree
# (in a fresh clone: the tracked files), like the `docker build .` context minus .dockerignore.
# It takes a few minutes: `npm ci` twice (with dev dependencies in the copy, production-only in OUT).
set -u

here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/l7guard-image.XXXXXX")
src=$scratch/src
out=$scratch/out
bin=$scratch/bin
home=$scratch/home
pass=0
fail=0
serve_pid=
api_pid=
netns=

cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null
  exec 3>&-
  [ -n "$netns" ] && ip netns del "$netns" 2>/dev/null
  if [ "${L7GUARD_CHECK_KEEP:-}" = 1 ]; then echo "# kept $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }
# Shows the end of a log under a failed check.
show() { [ -s "$1" ] && tail -n "${2:-25}" "$1" | sed 's/^/  # /'; return 0; }
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit $?
}

# --- node 20, as both stages (node:20-bookworm, node:20-slim) ---------------------------------
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
if [ "$node_major" = 20 ]; then ok "node $(node --version) is the image's major version (20)"; else not_ok "node is v20 like the image (found: ${node_major:-none})"; fi
command -v npm >/dev/null 2>&1 || { not_ok "npm is installed"; finish; }

# --- a copy of the repository -------------------------------------------------------------------
mkdir -p "$src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (
    cd "$repo" || exit 1
    git -c core.quotePath=false ls-files --cached --others --exclude-standard |
      while IFS= read -r f; do
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\n' "$f"; fi
      done >"$scratch/files"
    tar -cf - -T "$scratch/files" | tar -xf - -C "$src"
  ) && copied="$(wc -l <"$scratch/files" | tr -d ' ') files known to git"
else
  (cd "$repo" && tar -cf - --exclude=./node_modules --exclude=./dist --exclude=./.git --exclude=./.tap \
    --exclude=./coverage --exclude='./bench/node_modules' . | tar -xf - -C "$src") && copied="the tree (not a git work tree)"
fi
if [ -f "$src/package.json" ] && [ -f "$src/deploy/image/build.sh" ] && [ ! -e "$src/node_modules" ] && [ ! -e "$src/dist" ]; then
  ok "copy of the repository: ${copied:-?}, without node_modules/ or dist/"
else
  not_ok "copy of the repository into $src"
  finish
fi

# --- build.sh, as the Dockerfile runs it ----------------------------------------------------------
if sh "$src/deploy/image/build.sh" build "$src" "$out" >"$scratch/build.log" 2>&1; then
  ok "build.sh build SRC OUT (npm ci + tsc, npm pack file set, npm ci --omit=dev)"
else
  not_ok "build.sh build SRC OUT"
  show "$scratch/build.log" 40
  finish
fi
if sh "$src/deploy/image/build.sh" link "$out" "$bin" >"$scratch/link.log" 2>&1 && [ -x "$bin/l7guard" ]; then
  ok "build.sh link OUT BINDIR puts l7guard on PATH"
else
  not_ok "build.sh link OUT BINDIR"
  show "$scratch/link.log"
fi

# --- what OUT holds -----------------------------------------------------------------------------
# Every package the lock marks dev-only must be absent, and every production dependency present.
if node --input-type=module - "$out" >"$scratch/deps.log" 2>&1 <<'EOF'
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const out = process.argv[2];
const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(out, 'package-lock.json'), 'utf8'));
const problems = [];
for (const [path, p] of Object.entries(lock.packages ?? {})) {
  if (path !== '' && p.dev === true && existsSync(join(out, path))) problems.push(`dev-only ${path} is installed`);
}
// A devDependency may also be a production package's dependency (@kubernetes/client-node needs
// @types/node): the lock says which are dev-only; typescript and tap must be.
const devOnly = Object.keys(pkg.devDependencies ?? {}).filter((name) => lock.packages?.[`node_modules/${name}`]?.dev === true);
for (const name of devOnly) {
  if (existsSync(join(out, 'node_modules', name))) problems.push(`devDependency ${name} is installed`);
}
for (const name of ['typescript', 'tap']) if (!devOnly.includes(name)) problems.push(`the lock does not mark ${name} dev-only`);
for (const name of ['typescript', 'tap', '.bin/tsc', '.bin/tap']) {
  if (existsSync(join(out, 'node_modules', name))) problems.push(`node_modules/${name} is installed`);
}
for (const name of Object.keys(pkg.dependencies ?? {})) {
  if (!existsSync(join(out, 'node_modules', name, 'package.json'))) problems.push(`dependency ${name} is missing`);
}
if (problems.length > 0) { console.log(problems.join('\n')); process.exit(1); }
console.log(`${Object.keys(pkg.dependencies ?? {}).length} dependencies, none of ${devOnly.length} dev-only devDependencies`);
EOF
then
  ok "OUT has the production dependencies only ($(tail -n 1 "$scratch/deps.log"); no typescript, no tap)"
else
  not_ok "OUT has the production dependencies only"
  show "$scratch/deps.log"
fi

missing=
for f in package.json package-lock.json bin/l7guard.js dist/cli/main.js dist/demo/demo-main.js dist/demo/deathstar-main.js \
  dist/proxy/sources/kubernetes/kubernetes-source.js demo/manifests/http-sw-app.yaml demo/manifests/sw_l3_l4_l7_policy.yaml; do
  [ -e "$out/$f" ] || missing="$missing $f"
done
extra=$(cd "$out" && { [ -e dist/test ] && echo dist/test; find . -path ./node_modules -prune -o -name '*.map' -print | head -n 3; })
if [ -z "$missing" ] && [ -z "$extra" ]; then
  ok "OUT = package.json, package-lock.json, bin/, the runtime dist/ folders, demo/manifests (no dist/test, no source maps)"
else
  not_ok "OUT's file set (missing:${missing:- none}; unexpected: ${extra:-none})"
fi

# --- how the runtime stage runs it --------------------------------------------------------------
# USER node (uid/gid 1000) over root-owned files, ENV NODE_ENV=production, nothing else inherited.
mkdir -p "$home"
node_dir=$(dirname "$(command -v node)")
run_path="$bin:$node_dir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
as_node=
# (Only when uid 1000 can run this node: not one installed under /root, say.)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
  setpriv --reuid=1000 --regid=1000 --clear-groups "$node_dir/node" --version >/dev/null 2>&1; then
  as_node="setpriv --reuid=1000 --regid=1000 --clear-groups"
  chmod 0755 "$scratch"
  chown 1000:1000 "$home"
  # Nothing of the copy is reachable to uid 1000: whatever runs must come from OUT.
  chmod 0700 "$src"
  echo "# running the image's commands as uid/gid 1000 (USER node), package files owned by root, the copy unreadable"
else
  echo "# running the image's commands as $(id -un) (uid 1000 needs root, setpriv and a node it can run)"
fi
# run CMD...: in $home, with the runtime stage's environment.
run() {
  (cd "$home" && $as_node env -i PATH="$run_path" HOME="$home" NODE_ENV=production "$@")
}

version=$(node -p 'require(process.argv[1]).version' "$out/package.json")
printed=$(run l7guard --version 2>&1)
if [ "$(printf '%s\n' "$printed" | awk 'NR == 1 { print $NF }')" = "$version" ]; then
  ok "l7guard --version prints package.json's version ($printed)"
else
  not_ok "l7guard --version prints $version (got: $printed)"
fi

if run l7guard serve --help >"$scratch/help.log" 2>&1 && grep -q -- '--kubernetes' "$scratch/help.log" && grep -q -- '--admin-readonly' "$scratch/help.log"; then
  ok "l7guard serve --help (it lists --kubernetes and --admin-readonly, which deploy/ uses)"
else
  not_ok "l7guard serve --help"
  show "$scratch/help.log"
fi

if run l7guard policy validate -f "$out/demo/manifests/sw_l3_l4_l7_policy.yaml" >"$scratch/validate.log" 2>&1; then
  ok "l7guard policy validate -f OUT/demo/manifests/sw_l3_l4_l7_policy.yaml exits 0"
else
  not_ok "l7guard policy validate -f OUT/demo/manifests/sw_l3_l4_l7_policy.yaml"
  show "$scratch/validate.log"
fi

# --- the DaemonSet's command line, against an API server ------------------------------------------
# deploy/daemonset.yaml's l7guard args, --manage-iptables included, run as the DaemonSet runs them:
# as root with NET_ADMIN and NET_RAW only (setpriv: every other capability out of the bounding set,
# no new privileges), inside a network namespace this script creates (`ip netns add`, deleted on
# exit), so the nat chain it installs is that namespace's and this host's firewall is never touched.
# The args are the manifest's: only the unix admin socket moves into the scratch folder,
# $(NODE_IP)/$(NODE_NAME) are filled in and --kubeconfig is added (the read-only admin listener and
# the redirect listeners keep their ports: the namespace has its own). The API server is the tests'
# (dist/test/helpers/kube-api-server-main.js in the copy, which has dev dependencies), in the same
# namespace, holding the Star Wars cluster (its pods name no node, so all are this node's) and the L7
# policy, and enforcing deploy/rbac.yaml's ClusterRole for the l7guard service account's token.
# Checked: /ready, the admin socket, the read-only listener, RBAC, the chain l7guard installed
# (`l7guard iptables show`, GET /interception), and that SIGTERM removes it. Needs root, ip and
# iptables: elsewhere it says why and skips; in CI (CI=true) that is a failure.
k8s=$scratch/k8s
mkdir -p "$k8s/run/l7guard"
netns=
as_guard=
why=
if [ "$(id -u)" != 0 ]; then
  why="needs root (--manage-iptables, a network namespace)"
elif ! command -v ip >/dev/null 2>&1 || ! command -v iptables-restore >/dev/null 2>&1; then
  why="needs ip and iptables"
elif ! ip netns add "l7g-check-$$" 2>"$k8s/netns.err"; then
  why="ip netns add failed: $(head -n 1 "$k8s/netns.err")"
else
  netns=l7g-check-$$
  ip -n "$netns" link set lo up
  guard_caps="setpriv --inh-caps=-all --bounding-set=-all,+net_admin,+net_raw --no-new-privs"
  if $guard_caps true 2>/dev/null; then as_guard=$guard_caps; fi
fi
# inns CMD...: in the namespace, as root.
inns() { ip netns exec "$netns" "$@"; }
# guard CMD...: in the namespace, as the DaemonSet's l7guard container (uid 0, NET_ADMIN + NET_RAW), in $home.
guard() {
  (cd "$home" && exec ip netns exec "$netns" $as_guard env -i PATH="$run_path" HOME="$home" NODE_ENV=production "$@")
}
if [ -n "$why" ]; then
  if [ "${CI:-}" = true ]; then not_ok "deploy/daemonset.yaml's serve args with --manage-iptables: $why"; else echo "# skipped deploy/daemonset.yaml's serve args with --manage-iptables: $why"; fi
elif (cd "$src" && node --input-type=module - "$src" "$k8s" >"$k8s/prepare.log" 2>&1) <<'EOF'
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [src, dir] = process.argv.slice(2);
const { parseAllDocuments } = await import(pathToFileURL(join(src, 'node_modules/yaml/dist/index.js')).href);
const sw = await import(pathToFileURL(join(src, 'dist/fixtures/star-wars.js')).href);
const ds = parseAllDocuments(readFileSync(join(src, 'deploy/daemonset.yaml'), 'utf8')).map((d) => d.toJS()).find((o) => o?.kind === 'DaemonSet');
const c = ds.spec.template.spec.containers.find((x) => x.name === 'l7guard');
const args = [...c.args];
const at = (flag) => args.indexOf(flag) + 1;
if (!args.includes('--manage-iptables')) throw new Error('the DaemonSet does not run --manage-iptables');
args[at('--admin')] = `unix:${join(dir, 'run/l7guard/admin.sock')}`;
const expanded = args.map((a) => a.replace('$(NODE_IP)', '127.0.0.1').replace('$(NODE_NAME)', 'node-1'));
writeFileSync(join(dir, 'serve.args'), ['--kubeconfig', join(dir, 'kubeconfig'), ...expanded.slice(1)].join('\n') + '\n');
writeFileSync(join(dir, 'readonly'), args[at('--admin-readonly')]);
writeFileSync(join(dir, 'chain'), at('--iptables-chain') > 0 ? args[at('--iptables-chain')] : 'L7GUARD');
const addresses = { deathstar: ['127.0.43.4', '127.0.43.5'], tiefighter: '127.0.43.2', xwing: '127.0.43.3', clusterIP: '127.0.43.10' };
writeFileSync(join(dir, 'cluster.yaml'), sw.starWarsYaml({ addresses, namespaceObject: true }));
writeFileSync(join(dir, 'policy.yaml'), sw.starWarsPolicy(sw.POLICIES.l7));
// What --manage-iptables must redirect for the L7 policy: the deathstar pods and the clusterIP, port 80.
writeFileSync(join(dir, 'expected'), [...addresses.deathstar, addresses.clusterIP].map((ip) => `${ip}:80`).sort().join('\n') + '\n');
console.log(`serve ${expanded.join(' ')}`);
EOF
then
  mkfifo "$k8s/api.in"
  ip netns exec "$netns" node "$src/dist/test/helpers/kube-api-server-main.js" --host 127.0.0.1 --port 0 \
    --token "l7guard-check=system:serviceaccount:l7guard:l7guard" --role "$src/deploy/rbac.yaml" \
    -f "$k8s/cluster.yaml" -f "$k8s/policy.yaml" <"$k8s/api.in" >"$k8s/api.out" 2>"$k8s/api.err" &
  api_pid=$!
  # Holding the fifo open keeps the API server's stdin open; it exits when this script closes it.
  exec 3>"$k8s/api.in"
  url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$k8s/api.out" | head -n 1)
    [ -n "$url" ] && break
    sleep 0.1
  done
  cat >"$k8s/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: check, cluster: {server: "$url"}}]
users: [{name: l7guard, user: {token: l7guard-check}}]
contexts: [{name: check, context: {cluster: check, user: l7guard}}]
current-context: check
EOF
  chmod 0644 "$k8s/kubeconfig"
  set --
  while IFS= read -r a; do set -- "$@" "$a"; done <"$k8s/serve.args"
  ro=$(cat "$k8s/readonly")
  chain=$(cat "$k8s/chain")
  sock=$k8s/run/l7guard/admin.sock
  # (exec all the way down: $! is l7guard's pid, which gets the SIGTERM.)
  (cd "$home" && exec ip netns exec "$netns" $as_guard env -i PATH="$run_path" HOME="$home" NODE_ENV=production l7guard serve "$@") >"$k8s/serve.log" 2>&1 &
  serve_pid=$!
  # status URL METHOD / body URL: from inside the namespace.
  status() { inns node -e 'fetch(process.argv[1], { method: process.argv[2] }).then((r) => console.log(r.status), () => console.log(0))' "$@"; }
  body() { inns node -e 'fetch(process.argv[1]).then((r) => r.text()).then((t) => console.log(t), () => console.log(""))' "$@"; }
  ready=0
  for _ in $(seq 1 300); do
    [ "$(status "http://$ro/ready" GET)" = 200 ] && { ready=1; break; }
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    not_ok "the test API server started"
    show "$k8s/api.err"
  elif [ "$ready" = 1 ]; then
    ok "deploy/daemonset.yaml's serve --kubernetes --manage-iptables args, as uid 0 with NET_ADMIN+NET_RAW${as_guard:+ only} in a network namespace: GET /ready 200 on --admin-readonly, with deploy/rbac.yaml enforced"
  else
    not_ok "deploy/daemonset.yaml's serve --kubernetes --manage-iptables args reach /ready 200 on --admin-readonly"
    head -n 1 "$k8s/prepare.log" | sed 's/^/  # /'
    show "$k8s/serve.log"
    show "$k8s/api.err" 5
  fi
  if [ "$ready" = 1 ]; then
    mode=$(stat -c %a "$sock" 2>/dev/null)
    if guard l7guard policy get --server "unix:$sock" >"$k8s/get.log" 2>&1 && grep -q 'rule1' "$k8s/get.log" && [ "$mode" = 600 ]; then
      ok "l7guard policy get --server unix:SOCKET shows the API's rule1 (socket mode $mode)"
    else
      not_ok "l7guard policy get over the unix admin socket (mode ${mode:-?}) shows rule1"
      show "$k8s/get.log"
    fi
    code=$(status "http://$ro/reload" POST)
    if [ "$code" = 403 ]; then ok "the read-only admin listener refuses POST /reload (403)"; else not_ok "POST /reload on --admin-readonly is 403 (got $code)"; fi
    if grep -q -i -e 'list/watch failed' -e 'forbidden' "$k8s/serve.log"; then
      not_ok "every list/watch granted by deploy/rbac.yaml"
      grep -m 3 -i -e 'list/watch failed' -e forbidden "$k8s/serve.log" | sed 's/^/  # /'
    else
      ok "every list/watch l7guard made was granted by deploy/rbac.yaml"
    fi
    # The chain: one REDIRECT per expected destination, jumped to first from PREROUTING and from
    # OUTPUT for every uid but l7guard's (0); /interception lists the same destinations.
    guard l7guard iptables show --chain "$chain" >"$k8s/show.log" 2>&1
    rules=$(sed -n "s/^-A $chain -d \([0-9.]*\)\/32 -p tcp -m tcp --dport \([0-9]*\) .*-j REDIRECT --to-ports [0-9]*\$/\1:\2/p" "$k8s/show.log" | sort)
    listed=$(body "http://$ro/interception" | node -e 'let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => { try { console.log(JSON.parse(s).redirects.map((r) => r.destination).sort().join("\n")); } catch { console.log(""); } })')
    first_pre=$(inns iptables -t nat -S PREROUTING | sed -n 2p)
    first_out=$(inns iptables -t nat -S OUTPUT | sed -n 2p)
    if [ "$rules" = "$(cat "$k8s/expected")" ] && [ "$listed" = "$rules" ] &&
      case "$first_pre" in *"-j $chain") true;; *) false;; esac &&
      case "$first_out" in *"! --uid-owner 0 "*"-j $chain") true;; *) false;; esac; then
      ok "l7guard iptables show: chain $chain redirects the deathstar pods and clusterIP ($(echo $rules)), first in PREROUTING and OUTPUT (! --uid-owner 0); GET /interception lists the same"
    else
      not_ok "chain $chain redirects $(echo $(cat "$k8s/expected")) (rules: $(echo $rules); /interception: $(echo $listed)), jumped to first from PREROUTING and OUTPUT ! --uid-owner 0"
      show "$k8s/show.log"
      echo "  # PREROUTING: $first_pre"
      echo "  # OUTPUT: $first_out"
    fi
  fi
  kill "$serve_pid" 2>/dev/null
  wait "$serve_pid" 2>/dev/null
  serve_rc=$?
  serve_pid=
  if [ "$ready" = 1 ]; then
    guard l7guard iptables show --chain "$chain" >"$k8s/show-after.log" 2>&1
    left=$(inns iptables-save -t nat | grep -c -- "$chain" || true)
    if [ "$serve_rc" = 0 ] && grep -q "^# no chain $chain" "$k8s/show-after.log" && [ "${left:-0}" = 0 ]; then
      ok "after SIGTERM l7guard exits 0 and chain $chain and its jumps are gone"
    else
      not_ok "after SIGTERM l7guard exits 0 (got $serve_rc) and chain $chain is gone ($left iptables-save lines name it)"
      show "$k8s/show-after.log"
      show "$k8s/serve.log" 10
    fi
  fi
  exec 3>&-
  wait "$api_pid" 2>/dev/null
  api_pid=
else
  not_ok "the DaemonSet's args and a Star Wars cluster for the API server"
  show "$k8s/prepare.log"
fi

# --- l7guard demo, from OUT ---------------------------------------------------------------------
# As root: in a network namespace of its own with net.ipv4.ip_unprivileged_port_start=0, as Docker
# gives a container, so the demo binds port 80 as uid 1000 like `docker run l7guard:dev demo`.
demo_log=$scratch/demo.log
timeout_cmd=
command -v timeout >/dev/null 2>&1 && timeout_cmd="timeout 300"
if [ -n "$as_node" ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
  how="uid 1000 in its own network namespace, unprivileged ports from 0"
  # shellcheck disable=SC2016 # $@ is for the inner shell.
  (cd "$home" && $timeout_cmd unshare --net sh -c 'ip link set lo up && echo 0 >/proc/sys/net/ipv4/ip_unprivileged_port_start && exec "$@"' sh \
    $as_node env -i PATH="$run_path" HOME="$home" NODE_ENV=production l7guard demo) >"$demo_log" 2>&1
  rc=$?
else
  how="as $(id -un)"
  (cd "$home" && $timeout_cmd env -i PATH="$run_path" HOME="$home" NODE_ENV=production l7guard demo) >"$demo_log" 2>&1
  rc=$?
fi
# Its children (the deathstar replicas, l7guard serve) start from OUT/dist/demo (as uid 1000 the
# copy is unreadable, so nothing can come from there).
if [ "$rc" = 0 ]; then
  ok "l7guard demo runs end to end from OUT ($how)"
else
  not_ok "l7guard demo from OUT exits 0 ($how; exit $rc)"
  show "$demo_log" 30
fi

finish
