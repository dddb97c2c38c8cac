import type { ServiceContext } from './context.js';
import { type ImportDescription, type ImportInput, planImport } from './import-entry.js';

/**
 * The same call as `importEntry`, as a dry run: validates everything and says what the
 * import would do (the entry as it would be described, its chain, warnings, host names,
 * bindings), or throws the error the import would throw. Writes nothing.
 */
export async function preflightImport(
  ctx: ServiceContext,
  input: ImportInput,
): Promise<ImportDescription> {
  return (await planImport(ctx, input)).description;
}
