import type { Certificate } from '../core/certificate.js';
import type { Store } from '../store/store.js';

/** What every service operation shares: the store, the clock and who is acting. */
export interface ServiceContext {
  store: Store;
  now: () => Date;
  /** Trust anchors for completing and validating uploaded chains (e.g. Node's roots). */
  trusted: Certificate[];
  /**
   * Names the startup source that pins the served identity (a flag, the default file
   * location, the config file or the environment), or undefined when the keystore
   * decides. Activation of the `server` binding is refused while a source pins it.
   */
  serverPinnedBy?: () => string | undefined;
}

/** Aliases that certkeeper itself owns (the local CA and its server certificate). */
export const LOCAL_CA_ALIAS = 'certkeeper-local-ca';
export const LOCAL_SERVER_ALIAS = 'certkeeper-local-server';
