/**
 * The package entry (`import … from 'certkeeper'`): certkeeper inside another Node.js
 * HTTPS server. `openCertkeeper` serves the data directory's identity with live swaps;
 * `certkeeperApi` is the REST API as a Fastify plugin.
 */
export {
  type CertkeeperApiOptions,
  certkeeperApi,
  MAX_PARAM_LENGTH,
  routerProblem,
} from '../api/plugin.js';
export type { RuntimeLogger } from '../runtime/identity.js';
export type { RuntimeCounters, ServedStatus } from '../runtime/supervisor.js';
export type { InitialAdminResult } from '../service/initial-admin.js';
export type { Keystore } from '../service/keystore.js';
export {
  type Certkeeper,
  type CertkeeperOptions,
  type Listening,
  openCertkeeper,
} from './certkeeper.js';
