import { LOCAL_CA_ALIAS, type ServiceContext } from './context.js';

/** The local CA's certificate (PEM), which clients trust once; undefined before it exists. */
export async function localCaCertificate(ctx: ServiceContext): Promise<string | undefined> {
  return (await ctx.store.getEntry(LOCAL_CA_ALIAS))?.certificatePem ?? undefined;
}

/** The revision of the last committed change: what the keystore's ETags are made of. */
export async function keystoreRevision(ctx: ServiceContext): Promise<number> {
  return ctx.store.revision();
}
