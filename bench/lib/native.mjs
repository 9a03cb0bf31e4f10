/**
 * HAProxy and nginx with ACLs equivalent to the Star Wars L7 policy, generated per run:
 * tiefighter's source address may `POST /v1/request-landing` (forwarded round robin, keep-alive to
 * the backends), any other request from it gets `403 Access denied` on a kept-alive connection, and
 * every other source (xwing) is dropped with no HTTP bytes. Both run single-threaded, in the
 * foreground, so that one pid carries all the proxy's CPU.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The open-files limit we may use: HAProxy refuses to start when maxconn needs more. */
export function fdLimit() {
  const r = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

export function haproxyConfig({ listen, port, tiefighter, backends }) {
  // HAProxy needs about two descriptors per connection (client + server side) plus a margin.
  const maxconn = Math.max(256, Math.floor((Math.min(fdLimit(), 200_000) - 200) / 2));
  return `global
  nbthread 1
  maxconn ${maxconn}
  log stderr format raw local0 emerg

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive

frontend deathstar
  bind ${listen}:${port}
  acl tiefighter src ${tiefighter}
  # L3/L4: anyone but tiefighter is dropped before a byte is read (Cilium drops the SYN).
  tcp-request connection reject unless tiefighter
  acl landing path /v1/request-landing
  acl post method POST
  http-request return status 403 content-type text/plain string "Access denied" unless post landing
  default_backend deathstar

backend deathstar
  balance roundrobin
  http-reuse always
${backends.map((b, i) => `  server ds${i} ${b}`).join('\n')}
`;
}

export function nginxConfig({ listen, port, tiefighter, backends, prefix }) {
  const fds = Math.min(fdLimit(), 200_000);
  return `worker_processes 1;
worker_rlimit_nofile ${fds};
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log crit;
daemon off;
master_process off;

events {
  worker_connections ${fds - 100};
}

http {
  access_log off;
  default_type text/plain;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_max_body_size 4m;

  upstream deathstar {
${backends.map((b) => `    server ${b};`).join('\n')}
    keepalive 256;
  }

  server {
    listen ${listen}:${port};
    # L3/L4: anyone but tiefighter: 444 closes the connection without a response.
    if ($remote_addr != "${tiefighter}") { return 444; }
    location = /v1/request-landing {
      if ($request_method != POST) { return 403 "Access denied"; }
      proxy_pass http://deathstar;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
    }
    location / { return 403 "Access denied"; }
  }
}
`;
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0 ||
    spawnSync('sh', ['-c', `test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function binary(cmd) {
  return spawnSync('sh', ['-c', `test -x /usr/sbin/${cmd}`]).status === 0 ? `/usr/sbin/${cmd}` : cmd;
}

/**
 * HAProxy and nginx from Debian: installed with apt-get when missing. Throws (the bench fails
 * loudly) when they cannot be installed, unless `optional` (the smoke test outside CI).
 */
export function ensureNative(log, { optional = false } = {}) {
  const missing = [['haproxy', 'haproxy'], ['nginx', 'nginx-light']].filter(([cmd]) => !have(cmd));
  if (missing.length === 0) return { haproxy: true, nginx: true };
  if (optional) return { haproxy: have('haproxy'), nginx: have('nginx') };
  const pkgs = missing.map(([, p]) => p);
  log(`installing ${pkgs.join(' ')} with apt-get`);
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    // policy-rc.d is not ours to touch: the packages' services are simply never used (no systemd here,
    // and we run our own foreground instances with generated configs).
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
  } catch (err) {
    throw new Error(`cannot install ${pkgs.join(' ')} (${err.message}); HAProxy and nginx are part of the bench. ` +
      'Install them (Debian: apt-get install haproxy nginx-light) or pass --targets without them.');
  }
  for (const [cmd] of missing) if (!have(cmd)) throw new Error(`${cmd} still missing after apt-get install`);
  return { haproxy: true, nginx: true };
}

export function writeNginxPrefix(dir) {
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { recursive: true });
}

export function writeConfig(dir, name, text) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
