export { createCA, issueCert, CertsError, type CaOptions, type IssuedCert, type LeafOptions, type PemPair } from './ca.js';
export { tlsSecretYaml } from './secret.js';
export { DEFAULT_CERTS_DIR, readCA, writePair } from './store.js';
