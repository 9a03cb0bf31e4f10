// Entry point of a `--workers` data-plane process (cluster.setupPrimary({ exec }) in primary.ts).
import { runWorker } from './worker.js';

runWorker();
