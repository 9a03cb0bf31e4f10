/**
 * The field names of the flow.proto messages we emit, transcribed from
 *   cilium/cilium:api/v1/flow/flow.proto @ d18b576f679568bb8ef337306cdeba0a32a3ccb1
 *   cilium/cilium:api/v1/observer/observer.proto (GetFlowsResponse: flow = 1, node_status = 2,
 *     lost_events = 3, node_name = 1000, time = 1001)
 * plus Endpoint.cluster_name = 7, which newer releases added (the stored proto predates it; seen
 * in later flow.proto excerpts: `string cluster_name = 7;` right after `identity`).
 * JSON keys are protojson UseProtoNames, i.e. these names verbatim.
 *
 * A value is either a nested message name, 'scalar', or ['repeated', message].
 */
type Field = string | readonly ['repeated', string];

export const MESSAGES: Readonly<Record<string, Readonly<Record<string, Field>>>> = {
  GetFlowsResponse: { flow: 'Flow', node_status: 'scalar', lost_events: 'scalar', node_name: 'scalar', time: 'scalar' },
  Flow: {
    time: 'scalar', uuid: 'scalar', verdict: 'scalar', drop_reason: 'scalar', ethernet: 'Ethernet',
    IP: 'IP', l4: 'Layer4', source: 'Endpoint', destination: 'Endpoint', Type: 'scalar',
    node_name: 'scalar', source_names: 'scalar', destination_names: 'scalar', l7: 'Layer7',
    reply: 'scalar', event_type: 'CiliumEventType', source_service: 'Service',
    destination_service: 'Service', traffic_direction: 'scalar', policy_match_type: 'scalar',
    trace_observation_point: 'scalar', drop_reason_desc: 'scalar', is_reply: 'scalar',
    debug_capture_point: 'scalar', interface: 'scalar', proxy_port: 'scalar', trace_context: 'scalar',
    sock_xlate_point: 'scalar', socket_cookie: 'scalar', cgroup_id: 'scalar',
    egress_allowed_by: ['repeated', 'Policy'], ingress_allowed_by: ['repeated', 'Policy'],
    egress_denied_by: ['repeated', 'Policy'], ingress_denied_by: ['repeated', 'Policy'], Summary: 'scalar',
  },
  // Flow.egress_allowed_by = 21001, ingress_allowed_by = 21002, egress_denied_by = 21004,
  // ingress_denied_by = 21005 (Cilium >= 1.15 flow.proto; the stored proto above predates them).
  Policy: { name: 'scalar', namespace: 'scalar', labels: 'scalar', revision: 'scalar', kind: 'scalar' },
  Ethernet: { source: 'scalar', destination: 'scalar' },
  IP: { source: 'scalar', destination: 'scalar', ipVersion: 'scalar', encrypted: 'scalar' },
  Layer4: { TCP: 'TCP', UDP: 'scalar', ICMPv4: 'scalar', ICMPv6: 'scalar', SCTP: 'scalar' },
  TCP: { source_port: 'scalar', destination_port: 'scalar', flags: 'TCPFlags' },
  TCPFlags: { FIN: 'scalar', SYN: 'scalar', RST: 'scalar', PSH: 'scalar', ACK: 'scalar', URG: 'scalar', ECE: 'scalar', CWR: 'scalar', NS: 'scalar' },
  Endpoint: {
    ID: 'scalar', identity: 'scalar', cluster_name: 'scalar', namespace: 'scalar', labels: 'scalar',
    pod_name: 'scalar', workloads: ['repeated', 'Workload'],
  },
  Workload: { name: 'scalar', kind: 'scalar' },
  Layer7: { type: 'scalar', latency_ns: 'scalar', dns: 'scalar', http: 'HTTP', kafka: 'scalar' },
  HTTP: { code: 'scalar', method: 'scalar', url: 'scalar', protocol: 'scalar', headers: ['repeated', 'HTTPHeader'] },
  HTTPHeader: { key: 'scalar', value: 'scalar' },
  CiliumEventType: { type: 'scalar', sub_type: 'scalar' },
  Service: { name: 'scalar', namespace: 'scalar' },
};

/** Enum names (flow.proto) for the enum-typed fields we emit. */
export const ENUMS = {
  verdict: ['VERDICT_UNKNOWN', 'FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED'],
  Type: ['UNKNOWN_TYPE', 'L3_L4', 'L7', 'SOCK'],
  traffic_direction: ['TRAFFIC_DIRECTION_UNKNOWN', 'INGRESS', 'EGRESS'],
  l7type: ['UNKNOWN_L7_TYPE', 'REQUEST', 'RESPONSE', 'SAMPLE'],
  ipVersion: ['IP_NOT_USED', 'IPv4', 'IPv6'],
} as const;

/** The DropReason enum entries we can emit, name -> number, as in flow.proto. */
export const PROTO_DROP_REASONS: Readonly<Record<string, number>> = {
  POLICY_DENIED: 133,
  INVALID_PACKET_DROPPED: 134,
  UNKNOWN_L3_TARGET_ADDRESS: 150,
  SERVICE_BACKEND_NOT_FOUND: 158,
  POLICY_DENY: 181,
};

/** Every key path in `value` (parsed as message `msg`) that flow.proto does not define. */
export function unknownKeys(value: unknown, msg = 'GetFlowsResponse', path = ''): string[] {
  const fields = MESSAGES[msg];
  if (fields === undefined) throw new Error(`no message ${msg}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${path || '<root>'}: not an object`];
  const bad: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const p = path === '' ? k : `${path}.${k}`;
    const f = fields[k];
    if (f === undefined) { bad.push(p); continue; }
    if (f === 'scalar') continue;
    if (typeof f === 'string') { bad.push(...unknownKeys(v, f, p)); continue; }
    if (!Array.isArray(v)) { bad.push(`${p}: not a list`); continue; }
    v.forEach((item, i) => bad.push(...unknownKeys(item, f[1], `${p}[${i}]`)));
  }
  return bad;
}
