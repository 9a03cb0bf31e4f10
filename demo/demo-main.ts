/**
 * Entry of the demo when it re-executes itself inside `unshare --user --map-root-user --net`
 * (netns.ts). Options arrive as JSON in L7GUARD_DEMO_OPTS; output goes to stdout, which the outer
 * demo copies into its own output stream.
 */
import { OPTS_ENV, runDemo, type DemoOptions } from './run.js';

const raw = process.env[OPTS_ENV];
const passed = (raw ? JSON.parse(raw) : {}) as Partial<Omit<DemoOptions, 'out'>>;
process.exitCode = await runDemo({ ...passed, out: process.stdout });
