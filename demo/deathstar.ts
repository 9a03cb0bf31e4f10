/**
 * A faithful stand-in for `quay.io/cilium/starwars` (cilium/starwars-docker, a go-swagger server with
 * `basePath: /v1`), as described in docs/semantics.md#the-deathstar-backend. It is the demo's *backend*,
 * not the proxy, so plain node:http is fine here.
 *
 * Fidelity notes (what the Go server does and we copy):
 * - Routing ignores the query string (go-openapi routes on URL.Path).
 * - Unknown path: 404 `{"code":404,"message":"path <path> was not found"}` (application/json).
 * - Known path, wrong method: 405 `{"code":405,"message":"method <M> is not allowed, but [<A>] are"}`
 *   plus an `Allow` header (go-openapi `errors.ServeError`).
 * - `PUT /v1/exhaust-port` answers 503 with the backtrace text, then a goroutine sleeps 2 s and panics:
 *   the process dies (Go exits with status 2 on an unrecovered panic) and Kubernetes restarts it.
 */
import http from 'node:http';

export const LANDED_BODY = 'Ship landed\n';

/** The exact body of the 503 answer to `PUT /v1/exhaust-port` (configure_deathstar.go `backtrace`). */
export const PANIC_BODY =
  'Panic: deathstar exploded\n' +
  '\n' +
  'goroutine 1 [running]:\n' +
  'main.HandleGarbage(0x2080c3f50, 0x2, 0x4, 0x425c0, 0x5, 0xa)\n' +
  '        /code/src/github.com/empire/deathstar/\n' +
  '        temp/main.go:9 +0x64\n' +
  'main.main()\n' +
  '        /code/src/github.com/empire/deathstar/\n' +
  '        temp/main.go:5 +0x85\n';

/** What the Go runtime prints on stderr when the exhaust-port goroutine panics. */
export const PANIC_STDERR =
  'panic: deathstar exploded\n' +
  '\n' +
  'goroutine 42 [running]:\n' +
  'github.com/cilium/starwars-docker/restapi.configureAPI.func2.1()\n' +
  '\t/go/src/github.com/cilium/starwars-docker/restapi/configure_deathstar.go:67 +0x3c\n' +
  'created by github.com/cilium/starwars-docker/restapi.configureAPI.func2 in goroutine 41\n' +
  '\t/go/src/github.com/cilium/starwars-docker/restapi/configure_deathstar.go:65 +0x25\n';

/** Exit status of a Go program killed by an unrecovered panic. */
export const PANIC_EXIT_CODE = 2;

/** Delay between the 503 answer and the panic (configure_deathstar.go: `time.Sleep(2 * time.Second)`). */
export const EXPLODE_AFTER_MS = 2000;

/** The `GET /v1` body: tab-indented, JSON-looking text (the Go source is a raw string, not marshalled JSON). */
export function infoBody(hostname: string): string {
  return (
    '{\n' +
    '\t"name": "Death Star",\n' +
    `\t"hostname": "${hostname}",\n` +
    '\t"model": "DS-1 Orbital Battle Station",\n' +
    '\t"manufacturer": "Imperial Department of Military Research, Sienar Fleet Systems",\n' +
    '\t"cost_in_credits": "1000000000000",\n' +
    '\t"length": "120000",\n' +
    '\t"crew": "342953",\n' +
    '\t"passengers": "843342",\n' +
    '\t"cargo_capacity": "1000000000000",\n' +
    '\t"hyperdrive_rating": "4.0",\n' +
    '\t"starship_class": "Deep Space Mobile Battlestation",\n' +
    '\t"api": [\n' +
    '\t\t"GET   /v1",\n' +
    '\t\t"GET   /v1/healthz",\n' +
    '\t\t"POST  /v1/request-landing",\n' +
    '\t\t"PUT   /v1/cargobay",\n' +
    '\t\t"GET   /v1/hyper-matter-reactor/status",\n' +
    '\t\t"PUT   /v1/exhaust-port"\n' +
    '\t]\n' +
    '}\n'
  );
}

/** One received request, as logged (one JSON line each) by deathstar-main. */
export interface DeathstarHit {
  readonly method: string;
  /** Request target as received, query included. */
  readonly path: string;
  readonly host: string | undefined;
  /** Remote address of the connection ("ip:port"). */
  readonly from: string;
}

export interface DeathstarOptions {
  /** The pod hostname reported by `GET /v1`. */
  readonly hostname: string;
  /** Called for every request, before it is answered. */
  readonly onRequest?: ((hit: DeathstarHit) => void) | undefined;
  /** Called EXPLODE_AFTER_MS after an exhaust-port answer; the real server dies here. */
  readonly onExplode?: (() => void) | undefined;
}

type Route = 'info' | 'landing' | 'exhaust';

/** Implemented operations of swagger.yaml, path (after basePath) -> method -> handler. */
const ROUTES: ReadonlyMap<string, ReadonlyMap<string, Route>> = new Map<string, ReadonlyMap<string, Route>>([
  ['/v1', new Map<string, Route>([['GET', 'info']])],
  ['/v1/', new Map<string, Route>([['GET', 'info']])],
  ['/v1/request-landing', new Map<string, Route>([['POST', 'landing']])],
  ['/v1/exhaust-port', new Map<string, Route>([['PUT', 'exhaust']])],
]);

function send(res: http.ServerResponse, status: number, type: string, body: string, extra?: Record<string, string>): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(buf.length), ...extra });
  res.end(buf);
}

/** Creates the deathstar HTTP server (not listening yet). */
export function createDeathstar(opts: DeathstarOptions): http.Server {
  let exploding = false;
  return http.createServer((req, res) => {
    const target = req.url ?? '/';
    const method = req.method ?? 'GET';
    opts.onRequest?.({
      method,
      path: target,
      host: req.headers.host,
      from: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`,
    });
    // Drain any request body so keep-alive stays usable; the handlers never read it.
    req.resume();
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    const byMethod = ROUTES.get(path);
    if (byMethod === undefined) {
      send(res, 404, 'application/json', JSON.stringify({ code: 404, message: `path ${path} was not found` }));
      return;
    }
    const route = byMethod.get(method);
    if (route === undefined) {
      const allowed = [...byMethod.keys()];
      send(res, 405, 'application/json',
        JSON.stringify({ code: 405, message: `method ${method} is not allowed, but [${allowed.join(',')}] are` }),
        { Allow: allowed.join(',') });
      return;
    }
    switch (route) {
      case 'info':
        send(res, 200, 'text/plain', infoBody(opts.hostname));
        return;
      case 'landing':
        send(res, 200, 'text/plain', LANDED_BODY);
        return;
      case 'exhaust':
        send(res, 503, 'text/plain', PANIC_BODY);
        // Each exhaust-port call starts its own goroutine in Go; the first one to wake kills the process.
        if (!exploding) {
          exploding = true;
          setTimeout(() => opts.onExplode?.(), EXPLODE_AFTER_MS);
        }
        return;
    }
  });
}
