/**
 * JSON schema of the HubbleFlowResponse we emit, for fast-json-stringify. Property order is the
 * flow.proto declaration order (protojson prints fields that way). It must list every key
 * observe/flow.ts can set: fast-json-stringify silently drops keys the schema does not name
 * (test/observe/flow-sink.test.ts checks serialised output against JSON.stringify for all shapes).
 */
const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const bool = { type: 'boolean' } as const;

const endpoint = {
  type: 'object',
  properties: {
    ID: int,
    identity: int,
    cluster_name: str,
    namespace: str,
    labels: { type: 'array', items: str },
    pod_name: str,
    workloads: {
      type: 'array',
      items: { type: 'object', properties: { name: str, kind: str } },
    },
  },
} as const;

const service = { type: 'object', properties: { name: str, namespace: str } } as const;

const policies = {
  type: 'array',
  items: { type: 'object', properties: { name: str, namespace: str, labels: { type: 'array', items: str }, revision: str, kind: str } },
} as const;

export const flowResponseSchema = {
  title: 'observer.GetFlowsResponse',
  type: 'object',
  properties: {
    flow: {
      type: 'object',
      properties: {
        time: str,
        uuid: str,
        verdict: str,
        drop_reason: int,
        IP: {
          type: 'object',
          properties: { source: str, destination: str, ipVersion: str },
        },
        l4: {
          type: 'object',
          properties: {
            TCP: {
              type: 'object',
              properties: {
                source_port: int,
                destination_port: int,
                flags: {
                  type: 'object',
                  properties: {
                    FIN: bool, SYN: bool, RST: bool, PSH: bool, ACK: bool,
                    URG: bool, ECE: bool, CWR: bool, NS: bool,
                  },
                },
              },
            },
          },
        },
        source: endpoint,
        destination: endpoint,
        Type: str,
        node_name: str,
        l7: {
          type: 'object',
          properties: {
            type: str,
            latency_ns: str,
            http: {
              type: 'object',
              properties: {
                code: int,
                method: str,
                url: str,
                protocol: str,
                headers: {
                  type: 'array',
                  items: { type: 'object', properties: { key: str, value: str } },
                },
              },
            },
          },
        },
        reply: bool,
        event_type: { type: 'object', properties: { type: int, sub_type: int } },
        source_service: service,
        destination_service: service,
        traffic_direction: str,
        policy_match_type: int,
        drop_reason_desc: str,
        is_reply: bool,
        egress_allowed_by: policies,
        ingress_allowed_by: policies,
        egress_denied_by: policies,
        ingress_denied_by: policies,
        Summary: str,
        staged: bool,
      },
    },
    node_name: str,
    time: str,
  },
  required: ['flow', 'node_name', 'time'],
} as const;
