/**
 * The kernel side of l7guard-managed interception: a nat chain of our own (`L7GUARD` by default)
 * holding one `REDIRECT` per intercepted destination (a pod's `podIP:port` or a Service's
 * `clusterIP:port`, each to its own local listener port — the port *is* the record of the original
 * destination, docs/deployment.md), jumped to first from `PREROUTING` and `OUTPUT`.
 *
 * Why a chain of our own, written with `iptables-restore --noflush`: the nat table is shared.
 * kube-proxy owns `KUBE-*`, Docker owns `DOCKER` and rules in `PREROUTING`/`OUTPUT`/`POSTROUTING`,
 * a CNI may own more; none of it is ours to rewrite. iptables-restore(8): without `--noflush` every
 * table in the input is flushed (all of nat would go); with `--noflush` nothing is flushed *except a
 * user-defined chain the input declares* (`:L7GUARD - [0:0]`: created if missing, else emptied —
 * iptables-restore.c / xtables-restore.c flush a declared existing user chain under `--noflush`;
 * test/proxy/interception/iptables.test.ts checks it on both backends), and tables the input does not
 * mention (`filter`, `mangle`, …) are not touched at all. So the input names only `*nat`, declares
 * only our chain, and touches the built-in chains through single-rule commands (`-I`/`-D`), never a
 * `:PREROUTING` line (that would reset its policy and counters). Built-in chains are never flushed.
 *
 * Atomic: the whole input is one transaction. iptables-legacy builds the new nat table in user space
 * and swaps it in with one IPT_SO_SET_REPLACE; iptables-nft sends one nf_tables batch. Either every
 * line applies or none does (a failing `-D` leaves the table exactly as it was), so there is no
 * moment where the chain is empty, half filled, or not jumped to.
 *
 * Lock: iptables-legacy serialises writers on /run/xtables.lock; without `--wait` a restore that
 * finds kube-proxy holding it fails at once. We pass `--wait=SECONDS` to iptables-restore (iptables
 * >= 1.6.2; the nft variant accepts and ignores it: nf_tables transactions need no lock).
 * iptables-save takes no lock (a read) and has no `-w` in 1.8 ("invalid option -- 'w'").
 *
 * The hooks. `PREROUTING` sees what arrives at this network namespace from elsewhere: pods of this
 * node through their veth, other nodes' traffic to local pods; REDIRECT rewrites the destination to
 * the arriving interface's primary address, port TOPORT. `OUTPUT` sees what processes of this
 * namespace send: on a node, host-network processes (kubelet, hostNetwork pods, node agents) calling
 * a pod IP or clusterIP; REDIRECT there rewrites the destination to 127.0.0.1:TOPORT (the source
 * stays the node address the first route lookup picked), so listeners bind 0.0.0.0 (or 127.0.0.1
 * too). Why no `-m addrtype --dst-type …` on the OUTPUT jump: Docker needs `--dst-type LOCAL`
 * because its DOCKER chain matches ports on any local address; our rules match one remote /32 and
 * port each, so the filter would buy nothing, and `! --dst-type LOCAL` would even be wrong where
 * clusterIPs are local addresses (kube-proxy IPVS binds them to kube-ipvs0). The nat table is only
 * consulted for a connection's first packet, so the unfiltered jump costs a chain walk per new
 * connection. What OUTPUT does need is an exception for the proxy itself: on the host network it
 * connects upstream to the very podIP:port it intercepts, and would be sent back to itself forever.
 * Node cannot set SO_MARK, so the exception is by owner (as Istio's `--uid-owner 1337`): the OUTPUT
 * jump is `-m owner ! --uid-owner UID` (xt_owner is only valid in OUTPUT/POSTROUTING, so it sits on
 * the jump, not in the chain PREROUTING also walks). Run the proxy as a uid of its own: every
 * process with that uid bypasses interception.
 *
 * IPv4 only for now: `Redirect.ip` must be a dotted quad and only iptables (not ip6tables) is run.
 * Dual-stack would need a second manager over ip6tables-save/ip6tables-restore.
 */
import { spawn } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { ProxyError } from '../errors.js';

/** One intercepted destination: TCP to `ip:port` goes to the local listener on `toPort`. IPv4 only. */
export interface Redirect {
  readonly ip: string;
  readonly port: number;
  readonly toPort: number;
  /**
   * Shown in iptables-save: what the destination is (e.g. `pod default/deathstar-1`). Informational, so
   * never a reason to fail: cut to 255 characters (xt_comment's limit), and every character outside
   * printable ASCII, `"` and `\` replaced by `_` (see `sanitizeComment`).
   */
  readonly comment: string;
}

/** The built-in nat chains we jump from. */
export type Hook = 'PREROUTING' | 'OUTPUT';
export const HOOKS: readonly Hook[] = ['PREROUTING', 'OUTPUT'];
export const DEFAULT_CHAIN = 'L7GUARD';
/** The comment on our jumps (as kube-proxy's "kubernetes service portals"). */
export const JUMP_COMMENT = 'l7guard interception';

/** The nat table's built-in chains: a jump to our chain in any of them is ours to remove. */
const NAT_BUILTINS = new Set(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']);
const RESERVED_NAMES = new Set([...NAT_BUILTINS, 'FORWARD', 'ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'REDIRECT', 'DNAT', 'SNAT', 'MASQUERADE']);

export const IPTABLES_ERRORS = {
  /** iptables-save/iptables-restore could not run, timed out or exited non-zero; `stderr` says why. */
  L7G_ERR_IPTABLES: 'iptables command failed',
  /** A redirect set or option that cannot be rendered (not IPv4, bad port, conflicting entries, bad chain name, bad uid). */
  L7G_ERR_IPTABLES_INPUT: 'invalid interception rules',
  /** cleanup: a chain we do not own still jumps to ours, so ours cannot be deleted. */
  L7G_ERR_IPTABLES_IN_USE: 'the chain is still referenced by another chain',
} as const;

export type IptablesErrorCode = keyof typeof IPTABLES_ERRORS;

export class IptablesError extends ProxyError {
  declare readonly code: IptablesErrorCode;
  constructor(
    code: IptablesErrorCode,
    message: string = IPTABLES_ERRORS[code],
    readonly details: {
      /** The command as run (prefix included). */
      readonly argv?: readonly string[];
      readonly exitCode?: number | null;
      readonly stderr?: string;
      /** The iptables-restore input, whose line numbers stderr refers to. */
      readonly input?: string;
    } = {},
  ) {
    super(code, message);
  }

  get stderr(): string {
    return this.details.stderr ?? '';
  }
}

export interface RenderOptions {
  /** Our chain (default `L7GUARD`). At most 28 characters: letters, digits, `_`, `.`, `-`. */
  readonly chain?: string;
  /** Where to jump from (default both). A hook left out loses any jump it had. */
  readonly hooks?: readonly Hook[];
  /**
   * The uid whose own connections the OUTPUT jump skips (`-m owner ! --uid-owner UID`): the proxy's.
   * A proxy on the host network connects upstream to the very pod IP:port it intercepts; without this
   * its upstream connection would be redirected back to itself, forever. Omitted: no exclusion.
   */
  readonly outputExcludeUid?: number;
  /** `iptables-save -t nat` as it is now; the jumps are reconciled against it. Omitted: an empty nat table. */
  readonly current?: string;
}

// ---------------------------------------------------------------------------------------------
// iptables-save parsing

/** The nat table of an iptables-save dump: chains in order of declaration, rules as the text after `-A CHAIN `. */
export interface NatTable {
  /** Whether the dump had a `*nat` section. */
  readonly present: boolean;
  readonly chains: ReadonlyMap<string, readonly string[]>;
}

export function parseSave(text: string): NatTable {
  const chains = new Map<string, string[]>();
  let inNat = false;
  let present = false;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      inNat = line === '*nat';
      present ||= inNat;
      continue;
    }
    if (!inNat) continue;
    if (line === 'COMMIT') {
      inNat = false;
      continue;
    }
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!;
      if (!chains.has(name)) chains.set(name, []);
      continue;
    }
    const m = /^-A (\S+) (.*)$/.exec(line);
    if (m === null) continue;
    const [, chain, spec] = m as unknown as [string, string, string];
    let rules = chains.get(chain);
    if (rules === undefined) chains.set(chain, (rules = []));
    rules.push(spec);
  }
  return { present, chains };
}

/**
 * Splits a rule as iptables-save prints it (and iptables-restore reads it): whitespace-separated,
 * `"…"` quoting with `\` escapes. Quoting differs between what we write and what iptables-save prints
 * (`--comment plain` vs `--comment "plain"`), tokens do not.
 */
export function tokenize(spec: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inToken = false;
  let quoted = false;
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i]!;
    if (c === '\\' && i + 1 < spec.length) {
      cur += spec[++i];
      inToken = true;
    } else if (c === '"') {
      quoted = !quoted;
      inToken = true;
    } else if (!quoted && (c === ' ' || c === '\t')) {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
    } else {
      cur += c;
      inToken = true;
    }
  }
  if (inToken) out.push(cur);
  return out;
}

/** The chain a rule jumps or goes to, if any (`-j X` / `-g X`). */
function jumpTarget(spec: string): string | undefined {
  const t = tokenize(spec);
  for (let i = 0; i < t.length - 1; i++) {
    if (t[i] === '-j' || t[i] === '--jump' || t[i] === '-g' || t[i] === '--goto') return t[i + 1];
  }
  return undefined;
}

const sameRule = (a: string, b: string): boolean => {
  const x = tokenize(a);
  const y = tokenize(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/** iptables-save text without `#` lines and with `[packets:bytes]` counters zeroed: what "unchanged" compares. */
export function normalizeSave(text: string): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'))
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Rendering

function checkChain(chain: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,27}$/.test(chain) || RESERVED_NAMES.has(chain)) {
    throw new IptablesError('L7G_ERR_IPTABLES_INPUT', `chain name "${chain}": 1–28 letters, digits, "_", "." or "-", not a built-in chain or target`);
  }
  return chain;
}

const isPort = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;

/** What a comment becomes in the rule: printable ASCII without `"` and `\`, 1–255 characters. */
export function sanitizeComment(comment: string): string {
  const clean = String(comment).replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '_').slice(0, 255);
  return clean === '' ? '-' : clean;
}
const ipKey = (ip: string) => ip.split('.').map((o) => o.padStart(3, '0')).join('.');

/** Checks, de-duplicates and sorts (by IP numerically, port, toPort, comment): the same set always renders the same text. */
export function normalizeRedirects(redirects: readonly Redirect[]): Redirect[] {
  const byDest = new Map<string, Redirect>();
  const byToPort = new Map<number, Redirect>();
  for (const r of redirects) {
    const what = `redirect ${String(r.ip)}:${String(r.port)} -> ${String(r.toPort)}`;
    // Dotted quad only (isIPv4 also refuses leading zeros, which iptables would read as octal-free decimals).
    if (typeof r.ip !== 'string' || !isIPv4(r.ip)) throw new IptablesError('L7G_ERR_IPTABLES_INPUT', `${what}: ip must be an IPv4 address (IPv6 is not supported yet)`);
    if (!isPort(r.port) || !isPort(r.toPort)) throw new IptablesError('L7G_ERR_IPTABLES_INPUT', `${what}: ports must be integers 1–65535`);
    const comment = sanitizeComment(r.comment);
    const key = `${r.ip}:${r.port}`;
    const prev = byDest.get(key);
    if (prev !== undefined) {
      if (prev.toPort === r.toPort && prev.comment === comment) continue;
      throw new IptablesError('L7G_ERR_IPTABLES_INPUT', `${what}: ${key} is already redirected to ${prev.toPort} ("${prev.comment}")`);
    }
    const other = byToPort.get(r.toPort);
    if (other !== undefined) {
      // The listener port is the only record of the original destination: two destinations cannot share one.
      throw new IptablesError('L7G_ERR_IPTABLES_INPUT', `${what}: port ${r.toPort} already receives ${other.ip}:${other.port}`);
    }
    const clean: Redirect = { ip: r.ip, port: r.port, toPort: r.toPort, comment };
    byDest.set(key, clean);
    byToPort.set(r.toPort, clean);
  }
  return [...byDest.values()].sort(
    (a, b) =>
      cmp(ipKey(a.ip), ipKey(b.ip)) || a.port - b.port || a.toPort - b.toPort || cmp(a.comment, b.comment),
  );
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * One rule, in the form iptables-save prints back (`-m tcp` spelled out: `-p tcp --dport` loads it
 * implicitly and iptables-save shows it), so an installed chain compares equal to a rendered one.
 */
function redirectRule(r: Redirect): string {
  return `-d ${r.ip}/32 -p tcp -m tcp --dport ${r.port} -m comment --comment "${r.comment}" -j REDIRECT --to-ports ${r.toPort}`;
}

/** The jump from `hook` to `chain`, as iptables-save prints it. */
function jumpRule(hook: Hook, chain: string, outputExcludeUid?: number): string {
  const owner = hook === 'OUTPUT' && outputExcludeUid !== undefined ? `-m owner ! --uid-owner ${outputExcludeUid} ` : '';
  return `${owner}-m comment --comment "${JUMP_COMMENT}" -j ${chain}`;
}

export interface ApplyPlan {
  /** The iptables-restore --noflush input: always the whole desired state, so applying it is idempotent. */
  readonly input: string;
  /** True when the installed chain and jumps already are the desired ones: no restore needed. */
  readonly upToDate: boolean;
  /** Our chain's rules, `-A CHAIN …` lines, in order. */
  readonly rules: readonly string[];
  /** Hooks whose jump is (re)inserted at position 1. */
  readonly jumpsAdded: readonly Hook[];
  /** Existing jumps deleted (duplicates, not first, stale form, or a hook no longer wanted), as `-A HOOK …` lines. */
  readonly jumpsRemoved: readonly string[];
}

/**
 * What `apply` would do from `opts.current`: our chain declared (so created or emptied) and refilled,
 * and for each hook exactly one jump, the first rule of the chain, or none if the hook is not wanted.
 * A jump already first and in our exact form is left alone; one that is missing is inserted with
 * `-I HOOK 1`; one that is not first (say kube-proxy started after us and prepended its
 * `KUBE-SERVICES` jump: its DNAT would then rewrite a clusterIP before our REDIRECT sees it), or
 * duplicated, or of another form, is deleted and inserted again — in the same transaction, so the
 * hook is never without it.
 */
export function planApply(redirects: readonly Redirect[], opts: RenderOptions = {}): ApplyPlan {
  const chain = checkChain(opts.chain ?? DEFAULT_CHAIN);
  const hooks = new Set(opts.hooks ?? HOOKS);
  for (const h of hooks) if (!HOOKS.includes(h)) throw new IptablesError('L7G_ERR_IPTABLES_INPUT', `hook "${String(h)}": PREROUTING or OUTPUT`);
  const uid = opts.outputExcludeUid;
  if (uid !== undefined && !(Number.isInteger(uid) && uid >= 0 && uid <= 0xffffffff)) {
    throw new IptablesError('L7G_ERR_IPTABLES_INPUT', `outputExcludeUid ${String(uid)}: not a uid`);
  }
  const specs = normalizeRedirects(redirects).map(redirectRule);
  const table = parseSave(opts.current ?? '');
  const installed = table.chains.get(chain);
  let upToDate = installed !== undefined && installed.length === specs.length && installed.every((s, i) => sameRule(s, specs[i]!));

  const deletes: string[] = [];
  const inserts: string[] = [];
  const jumpsAdded: Hook[] = [];
  const jumpsRemoved: string[] = [];
  for (const hook of HOOKS) {
    const rules = table.chains.get(hook) ?? [];
    const jumps = rules.filter((s) => jumpTarget(s) === chain);
    const want = jumpRule(hook, chain, uid);
    const ok = hooks.has(hook) ? jumps.length === 1 && rules[0] !== undefined && jumpTarget(rules[0]) === chain && sameRule(rules[0], want) : jumps.length === 0;
    if (ok) continue;
    upToDate = false;
    for (const s of jumps) {
      deletes.push(`-D ${hook} ${s}`);
      jumpsRemoved.push(`-A ${hook} ${s}`);
    }
    if (hooks.has(hook)) {
      inserts.push(`-I ${hook} 1 ${want}`);
      jumpsAdded.push(hook);
    }
  }
  const rules = specs.map((s) => `-A ${chain} ${s}`);
  const input = ['*nat', `:${chain} - [0:0]`, ...rules, ...deletes, ...inserts, 'COMMIT', ''].join('\n');
  return { input, upToDate, rules, jumpsAdded, jumpsRemoved };
}

/**
 * The iptables-restore --noflush input (nat table) that installs `redirects`, from the state in
 * `opts.current` (default: an empty nat table). Deterministic: the same set and state render the same text.
 */
export function renderRules(redirects: readonly Redirect[], opts: RenderOptions = {}): string {
  return planApply(redirects, opts).input;
}

export interface CleanupPlan {
  /** undefined: nothing to remove. */
  readonly input: string | undefined;
  readonly chainExists: boolean;
  /** Rules our chain held. */
  readonly rules: number;
  /** The jumps to our chain from the built-in chains, as `-A HOOK …` lines. */
  readonly jumps: readonly string[];
}

/**
 * Removing every trace: each jump to `chain` from a built-in nat chain (by its exact text, so a
 * concurrent change makes the transaction fail rather than delete a neighbour), then the chain
 * emptied (declared) and deleted (`-X`), in one transaction. A jump from a user-defined chain is not
 * ours to delete: that is `L7G_ERR_IPTABLES_IN_USE`, naming the rule.
 */
export function planCleanup(current: string, chainName: string = DEFAULT_CHAIN): CleanupPlan {
  const chain = checkChain(chainName);
  const table = parseSave(current);
  const chainRules = table.chains.get(chain);
  const deletes: string[] = [];
  const jumps: string[] = [];
  const foreign: string[] = [];
  for (const [name, rules] of table.chains) {
    for (const s of rules) {
      if (jumpTarget(s) !== chain) continue;
      if (name === chain) continue; // a rule of our own chain jumping to itself goes with the flush
      if (NAT_BUILTINS.has(name)) {
        deletes.push(`-D ${name} ${s}`);
        jumps.push(`-A ${name} ${s}`);
      } else foreign.push(`-A ${name} ${s}`);
    }
  }
  if (foreign.length > 0) {
    throw new IptablesError('L7G_ERR_IPTABLES_IN_USE', `chain ${chain} is still jumped to from chains l7guard does not own: ${foreign.join('; ')}`);
  }
  const chainExists = chainRules !== undefined;
  if (!chainExists && deletes.length === 0) return { input: undefined, chainExists, rules: 0, jumps };
  const tail = chainExists ? [`:${chain} - [0:0]`, `-X ${chain}`] : [];
  return { input: ['*nat', ...deletes, ...tail, 'COMMIT', ''].join('\n'), chainExists, rules: chainRules?.length ?? 0, jumps };
}

// ---------------------------------------------------------------------------------------------
// Running iptables

export type Backend = 'nft' | 'legacy';

export interface IptablesManagerOptions {
  readonly chain?: string;
  readonly hooks?: readonly Hook[];
  /**
   * The uid the OUTPUT jump skips (see RenderOptions). Default: this process's uid, for a proxy that
   * manages its own rules. null: no exclusion (only safe if the proxy never connects from this
   * network namespace to a destination it intercepts).
   */
  readonly outputExcludeUid?: number | null;
  /** `nft` / `legacy`: iptables-nft-save/-restore or iptables-legacy-save/-restore. Default: iptables-save/-restore (the system's alternative). */
  readonly backend?: Backend;
  /** Explicit binaries (names or paths), overriding `backend`. */
  readonly saveBin?: string;
  readonly restoreBin?: string;
  /** Run every command under this prefix, e.g. `['ip', 'netns', 'exec', NS]`. */
  readonly prefix?: readonly string[];
  /** iptables-restore `--wait=SECONDS` for the xtables lock (default 5); false: no flag (iptables < 1.6.2). */
  readonly waitSeconds?: number | false;
  /** Per command (default 30 s); then SIGKILL and L7G_ERR_IPTABLES. */
  readonly timeoutMs?: number;
  /** Called before each command runs (logging, tests counting restores). */
  readonly onExec?: (argv: readonly string[], input: string | undefined) => void;
}

export interface ApplyResult {
  /** False when the installed state already was the desired one (no iptables-restore ran). */
  readonly changed: boolean;
  readonly rules: number;
  readonly jumpsAdded: readonly Hook[];
  readonly jumpsRemoved: readonly string[];
}

export interface CleanupResult {
  /** False when there was nothing to remove. */
  readonly removed: boolean;
  readonly chain: string;
  readonly chainExisted: boolean;
  readonly rules: number;
  readonly jumps: readonly string[];
}

export interface ShowResult {
  readonly chain: string;
  readonly exists: boolean;
  /** The jumps to our chain from built-in chains, then our chain's rules: iptables-save `-A` lines. */
  readonly jumps: readonly string[];
  readonly rules: readonly string[];
}

export function binaries(backend: Backend | undefined): { save: string; restore: string } {
  const base = backend === undefined ? 'iptables' : `iptables-${backend}`;
  return { save: `${base}-save`, restore: `${base}-restore` };
}

/**
 * Installs and removes our chain. Calls are serialised (one iptables-save + at most one
 * iptables-restore at a time per manager); other writers (kube-proxy) are fenced by the xtables lock
 * (legacy) or nf_tables transactions (nft). If a restore fails and the table changed since it was
 * read (another agent wrote in between), `apply` reads it again and retries once.
 */
export class IptablesManager {
  readonly chain: string;
  readonly #hooks: readonly Hook[];
  readonly #uid: number | undefined;
  readonly #save: string;
  readonly #restore: string;
  readonly #prefix: readonly string[];
  readonly #wait: number | false;
  readonly #timeoutMs: number;
  readonly #onExec: IptablesManagerOptions['onExec'];
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: IptablesManagerOptions = {}) {
    this.chain = checkChain(opts.chain ?? DEFAULT_CHAIN);
    this.#hooks = opts.hooks ?? HOOKS;
    this.#uid = opts.outputExcludeUid === null ? undefined : (opts.outputExcludeUid ?? process.getuid?.());
    const bins = binaries(opts.backend);
    this.#save = opts.saveBin ?? bins.save;
    this.#restore = opts.restoreBin ?? bins.restore;
    this.#prefix = opts.prefix ?? [];
    this.#wait = opts.waitSeconds ?? 5;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#onExec = opts.onExec;
  }

  /** Makes our chain hold exactly `redirects`, jumped to first from the hooks; no restore if it already does. */
  async apply(redirects: readonly Redirect[]): Promise<ApplyResult> {
    // Refuse a bad set before touching anything.
    const set = normalizeRedirects(redirects);
    return this.#serial(async () => {
      let current = await this.save();
      for (let attempt = 1; ; attempt++) {
        const plan = planApply(set, { chain: this.chain, hooks: this.#hooks, outputExcludeUid: this.#uid, current });
        const result = { rules: plan.rules.length, jumpsAdded: plan.jumpsAdded, jumpsRemoved: plan.jumpsRemoved };
        if (plan.upToDate) return { changed: false, ...result };
        try {
          await this.#restoreInput(plan.input);
          return { changed: true, ...result };
        } catch (err) {
          if (attempt >= 2 || !(err instanceof IptablesError)) throw err;
          // Retry once, from the new state, only if someone changed the table under us.
          const now = await this.save();
          if (normalizeSave(now) === normalizeSave(current)) throw err;
          current = now;
        }
      }
    });
  }

  /** Removes every jump to our chain from the built-in nat chains, then the chain. Succeeds when nothing is there. */
  cleanup(): Promise<CleanupResult> {
    return this.#serial(async () => {
      const plan = planCleanup(await this.save(), this.chain);
      if (plan.input !== undefined) await this.#restoreInput(plan.input);
      return { removed: plan.input !== undefined, chain: this.chain, chainExisted: plan.chainExists, rules: plan.rules, jumps: plan.jumps };
    });
  }

  /** What is installed now. */
  show(): Promise<ShowResult> {
    return this.#serial(async () => {
      const table = parseSave(await this.save());
      const rules = table.chains.get(this.chain);
      const jumps: string[] = [];
      for (const [name, specs] of table.chains) {
        if (name !== this.chain) for (const s of specs) if (jumpTarget(s) === this.chain) jumps.push(`-A ${name} ${s}`);
      }
      return { chain: this.chain, exists: rules !== undefined, jumps, rules: (rules ?? []).map((s) => `-A ${this.chain} ${s}`) };
    });
  }

  /** `iptables-save -t nat`, raw. */
  async save(): Promise<string> {
    return (await this.#run([this.#save, '-t', 'nat'])).stdout;
  }

  #restoreInput(input: string): Promise<unknown> {
    const wait = this.#wait === false ? [] : [`--wait=${this.#wait}`];
    return this.#run([this.#restore, '--noflush', ...wait], input);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #run(cmd: readonly string[], input?: string): Promise<{ stdout: string; stderr: string }> {
    const argv = [...this.#prefix, ...cmd];
    this.#onExec?.(argv, input);
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, this.#timeoutMs);
      const fail = (message: string, exitCode: number | null) =>
        reject(new IptablesError('L7G_ERR_IPTABLES', message, { argv, exitCode, stderr: stderr.trim(), input }));
      child.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        fail(err.code === 'ENOENT' ? `${argv[0]}: not found (is iptables installed?)` : `${argv.join(' ')}: ${err.message}`, null);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve({ stdout, stderr });
        else if (timedOut) fail(`${argv.join(' ')}: no answer within ${this.#timeoutMs} ms`, code);
        else fail(`${argv.join(' ')} exited ${code ?? signal ?? '?'}: ${stderr.trim() || '(no stderr)'}`, code);
      });
      if (input !== undefined) {
        child.stdin!.on('error', () => undefined); // EPIPE if it died first: 'close' reports it
        child.stdin!.end(input);
      }
    });
  }
}
