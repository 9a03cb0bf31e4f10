/**
 * A cluster node made of Linux network namespaces, for the interception e2e test and
 * `l7guard demo --netns`: one "node" namespace (where the proxy runs and the redirect rules live)
 * and one namespace per pod, each joined to the node by a veth pair. Pod i gets 10.244.<i+1>.2/24
 * with the node's 10.244.<i+1>.1 as default gateway, the way a CNI gives each pod a /32-ish link
 * to its node; Service clusterIPs (10.96.0.0/16) exist on no interface at all: traffic to them
 * leaves the pod by its default route and is caught by the node's nat PREROUTING rules, as
 * kube-proxy's or Cilium's would catch it.
 *
 * Nothing is created in the caller's namespace: `ip link add ... netns A type veth peer ... netns B`
 * makes both ends directly where they belong, and every name carries a per-run tag so parallel runs
 * never collide. `destroy()` kills what it spawned and deletes every namespace it made.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { STAR_WARS, type StarWarsAddresses } from '../fixtures/star-wars.js';

/** The deathstar Service's clusterIP: in the Service range of a default kubeadm cluster, on no interface. */
export const CLUSTER_IP = '10.96.0.10';

export interface NetnsPodSpec {
  /** Short role used in the namespace name (`<tag>-<role>`), e.g. "tf". */
  readonly role: string;
  /** The Kubernetes pod name, for messages. */
  readonly name: string;
}

export interface NetnsPod extends NetnsPodSpec {
  readonly netns: string;
  readonly ip: string;
  /** The node's address on this pod's link (the pod's default gateway). */
  readonly gateway: string;
}

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Tools the topology needs, by absolute path (ip netns exec needs no PATH lookup then). */
export interface NetnsTools {
  readonly ip: string;
  readonly iptables: string;
}

export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (d === '') continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Whether this process can build the topology: root, `ip` and `iptables` installed, and
 * `ip netns add` working (it fails in unprivileged containers even as uid 0).
 */
export function netnsSupport(tag: string): { ok: true; tools: NetnsTools } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root: creating network namespaces needs CAP_SYS_ADMIN and CAP_NET_ADMIN' };
  const ip = which('ip');
  const iptables = which('iptables');
  if (ip === undefined) return { ok: false, reason: '`ip` (iproute2) is not installed' };
  if (iptables === undefined) return { ok: false, reason: '`iptables` is not installed (apt-get install -y iptables)' };
  const probe = `${tag}-probe`;
  const add = spawnSync(ip, ['netns', 'add', probe], { encoding: 'utf8', timeout: 5000 });
  if (add.status !== 0) return { ok: false, reason: `\`ip netns add\` failed: ${(add.stderr || add.error?.message || '').trim()}` };
  const nat = spawnSync(ip, ['netns', 'exec', probe, iptables, '-t', 'nat', '-S'], { encoding: 'utf8', timeout: 5000 });
  spawnSync(ip, ['netns', 'del', probe], { timeout: 5000 });
  if (nat.status !== 0) return { ok: false, reason: `iptables nat table unusable in a namespace: ${(nat.stderr || '').trim()}` };
  return { ok: true, tools: { ip, iptables } };
}

/**
 * The Star Wars Pods as namespaces, in the order they get their addresses: tiefighter (`tf`), xwing
 * (`xw`), then the deathstar replicas (`ds1`, `ds2`, ...).
 */
export function starWarsPodSpecs(deathstar: readonly string[]): NetnsPodSpec[] {
  return [
    { role: 'tf', name: STAR_WARS.tiefighter.name },
    { role: 'xw', name: STAR_WARS.xwing.name },
    ...deathstar.map((name, i) => ({ role: `ds${i + 1}`, name })),
  ];
}

/** The addresses of the Pods `starWarsPodSpecs` made, with the Service on CLUSTER_IP. */
export function starWarsAddresses(topo: NetnsTopology): StarWarsAddresses {
  return {
    tiefighter: topo.pod('tf').ip,
    xwing: topo.pod('xw').ip,
    deathstar: [...topo.pods.values()].filter((p) => /^ds\d+$/.test(p.role)).map((p) => p.ip),
    clusterIP: CLUSTER_IP,
  };
}

/** A unique, short tag for this run's names (namespace names are free-form; interface names are per namespace). */
export function runTag(suffix = ''): string {
  return `l7g-${process.pid}${suffix === '' ? '' : `-${suffix}`}`;
}

export class NetnsTopology {
  readonly node: string;
  readonly pods: ReadonlyMap<string, NetnsPod>;
  readonly #tools: NetnsTools;
  readonly #made: string[] = [];
  readonly #children = new Set<ChildProcess>();
  #destroyed = false;

  private constructor(tools: NetnsTools, node: string, pods: Map<string, NetnsPod>) {
    this.#tools = tools;
    this.node = node;
    this.pods = pods;
  }

  /** Builds the node and pod namespaces; on any failure, removes whatever it already made. */
  static async create(tools: NetnsTools, tag: string, specs: readonly NetnsPodSpec[]): Promise<NetnsTopology> {
    const pods = new Map<string, NetnsPod>();
    specs.forEach((s, i) => {
      pods.set(s.role, { ...s, netns: `${tag}-${s.role}`, ip: `10.244.${i + 1}.2`, gateway: `10.244.${i + 1}.1` });
    });
    const t = new NetnsTopology(tools, `${tag}-node`, pods);
    try {
      await t.#addNetns(t.node);
      // Forwarding is per namespace: the node routes pod-to-pod, as a real node does.
      await t.#run([tools.ip, 'netns', 'exec', t.node, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      let i = 0;
      for (const p of pods.values()) {
        await t.#addNetns(p.netns);
        const nodeIf = `p${i++}`;
        await t.#ip(['link', 'add', nodeIf, 'netns', t.node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.netns]);
        await t.#ip(['-n', t.node, 'addr', 'add', `${p.gateway}/24`, 'dev', nodeIf]);
        await t.#ip(['-n', t.node, 'link', 'set', nodeIf, 'up']);
        await t.#ip(['-n', p.netns, 'addr', 'add', `${p.ip}/24`, 'dev', 'eth0']);
        await t.#ip(['-n', p.netns, 'link', 'set', 'eth0', 'up']);
        await t.#ip(['-n', p.netns, 'route', 'add', 'default', 'via', p.gateway]);
      }
    } catch (err) {
      await t.destroy();
      throw err;
    }
    return t;
  }

  pod(role: string): NetnsPod {
    const p = this.pods.get(role);
    if (p === undefined) throw new Error(`netns topology: no pod ${role}`);
    return p;
  }

  /**
   * The node's redirect, as a node-level CNI rule or a sidecar's init container installs it: TCP for
   * `ip:port` arriving from any pod link becomes a connection to the node's own `toPort`.
   */
  async redirect(ip: string, port: number, toPort: number): Promise<string[]> {
    const rule = ['-t', 'nat', '-A', 'PREROUTING', '-d', `${ip}/32`, '-p', 'tcp', '--dport', String(port), '-j', 'REDIRECT', '--to-ports', String(toPort)];
    await this.#run([this.#tools.ip, 'netns', 'exec', this.node, this.#tools.iptables, ...rule]);
    return ['iptables', ...rule];
  }

  /** Runs a command to completion inside a namespace. */
  exec(netns: string, argv: readonly string[], timeoutMs = 15_000): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = this.spawn(netns, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        resolve({ code: null, stdout, stderr: stderr + err.message });
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Starts a long-running process inside a namespace; `destroy()` stops it if it still runs. */
  spawn(netns: string, argv: readonly string[], opts: { stdio?: ['ignore' | 'pipe', 'pipe' | 'inherit', 'pipe' | 'inherit'] } = {}): ChildProcess {
    // `ip netns exec` execs the command, so the child's pid is the command's own.
    const child = spawn(this.#tools.ip, ['netns', 'exec', netns, ...argv], { stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Idempotent: SIGTERM (then SIGKILL) every spawned process, then delete every namespace made. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await Promise.all([...this.#children].map((c) => stopProcess(c)));
    // Deleting a namespace deletes its veth ends, and with them their peers.
    for (const ns of this.#made.reverse()) spawnSync(this.#tools.ip, ['netns', 'del', ns], { timeout: 5000 });
  }

  /** Namespaces this run made that still exist (empty after `destroy()`). */
  leftovers(): string[] {
    const list = spawnSync(this.#tools.ip, ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    const names = new Set(list.split('\n').map((l) => l.split(' ')[0]));
    return [this.node, ...[...this.pods.values()].map((p) => p.netns)].filter((n) => names.has(n));
  }

  async #addNetns(name: string): Promise<void> {
    await this.#ip(['netns', 'add', name]);
    this.#made.push(name);
    await this.#ip(['-n', name, 'link', 'set', 'lo', 'up']);
  }

  #ip(args: readonly string[]): Promise<void> {
    return this.#run([this.#tools.ip, ...args]);
  }

  #run(argv: readonly string[]): Promise<void> {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) {
      return Promise.reject(new Error(`${argv.join(' ')} failed: ${(r.stderr || r.error?.message || `exit ${String(r.status)}`).trim()}`));
    }
    return Promise.resolve();
  }
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
