/**
 * After a swap, StateRef warms the new revision's decision tables off the request path: every pod
 * identity's for the first revision, then only those the traffic used in the revision before
 * (warming all of a 10,000-rule policy cost ~100 ms of CPU per reload).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { PolicyState } from '../../policy/model.js';
import { StateRef } from '../../proxy/state-ref.js';
import { build, CLUSTER, MANIFESTS, pod } from '../policy/helpers.js';

const cluster = readFileSync(CLUSTER, 'utf8');
const L7 = readFileSync(MANIFESTS + 'examples__minikube__sw_l3_l4_l7_policy.yaml', 'utf8');

/**
 * What StateRef sees of `state` (warm and hotSubjects, delegated: the real state is frozen), and
 * the `subjects` of each warm() call (undefined = all).
 */
function recordWarm(state: PolicyState): { view: PolicyState; calls: (ReadonlySet<number> | undefined)[] } {
  const calls: (ReadonlySet<number> | undefined)[] = [];
  const view = {
    warm: (deadline: number, subjects?: ReadonlySet<number>) => {
      calls.push(subjects);
      return state.warm!(deadline, subjects);
    },
    hotSubjects: () => state.hotSubjects!(),
  } as unknown as PolicyState;
  return { view, calls };
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('hotSubjects: the identities whose tables requests looked up, nothing else', async (t) => {
  const s = build([cluster, L7]);
  t.same([...s.hotSubjects!()], [], 'no traffic, nothing hot');
  s.warm!(Infinity);
  t.same([...s.hotSubjects!()], [], 'warming is not traffic');
  const deathstar = pod(s, 'deathstar-8c4c77fb7-b9qmw');
  s.decide(s.identify(pod(s, 'tiefighter').ips[0]!), deathstar, 80);
  t.same([...s.hotSubjects!()], [deathstar.identity.id], "the deathstar's ingress table (the ships have no egress policy)");
});

t.test('StateRef warms all for the first revision, then the previous revision\'s hot identities', async (t) => {
  const ref = new StateRef();
  const first = build([cluster, L7], { revision: 1 });
  const w1 = recordWarm(first);
  ref.swap(w1.view);
  await nextTurn();
  t.same(w1.calls, [undefined], 'first revision: every pod identity');
  const deathstar = pod(first, 'deathstar-8c4c77fb7-b9qmw');
  first.decide(first.identify(pod(first, 'tiefighter').ips[0]!), deathstar, 80);
  const second = build([cluster, L7], { revision: 2, previous: first });
  const w2 = recordWarm(second);
  ref.swap(w2.view);
  await nextTurn();
  t.equal(w2.calls.length, 1);
  t.same([...(w2.calls[0] ?? [])], [deathstar.identity.id], 'second revision: only the identity the traffic used');
  // No request reaches revision 2 before revision 3 replaces it (a reload storm): 3 still warms it.
  const third = build([cluster, L7], { revision: 3, previous: second });
  const w3 = recordWarm(third);
  ref.swap(w3.view);
  await nextTurn();
  t.same([...(w3.calls[0] ?? [])], [deathstar.identity.id], 'third revision: what the second warmed is carried forward');
});

t.test('StateRef warms the staged policies\' candidates after the state in force', async (t) => {
  const staged = build([cluster, L7.replace(/^metadata:\n/m, 'metadata:\n  annotations:\n    l7guard.io/mode: audit\n')], { revision: 1 });
  t.equal(staged.staged?.length, 1);
  const own = recordWarm(staged);
  const candidate = recordWarm(staged.staged![0]!.state);
  const view = { ...own.view, staged: [{ ...staged.staged![0]!, state: candidate.view }] } as unknown as PolicyState;
  const ref = new StateRef();
  ref.swap(view);
  for (let i = 0; i < 4; i++) await nextTurn();
  t.same(own.calls, [undefined], 'the state in force first');
  t.same(candidate.calls, [undefined], 'then the candidate: every pod identity, off the request path');
});
