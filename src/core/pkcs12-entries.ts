import { CoreError } from './errors.js';
import type { Pkcs12Certificate, Pkcs12Contents, Pkcs12Key } from './pkcs12.js';

/**
 * One key entry of a keystore: a private key, its alias and the certificate paired with
 * it. The alias is the key bag's friendlyName (keytool writes the entry's alias there,
 * `openssl pkcs12 -name` too), else its certificate's.
 */
export interface Pkcs12KeyEntry {
  alias: string | undefined;
  key: Pkcs12Key;
  certificate: Pkcs12Certificate | undefined;
}

/** How many aliases an error names before it only counts the rest. */
const ALIASES_NAMED = 5;

/** The key entries of an opened PKCS#12 file, in file order. */
export function keyEntriesOf(contents: Pkcs12Contents): Pkcs12KeyEntry[] {
  return contents.keys.map((key, i) => {
    const paired = contents.pairs.find((p) => p.key === i);
    const certificate = paired ? contents.certificates[paired.certificate] : undefined;
    return { alias: key.friendlyName ?? certificate?.friendlyName, key, certificate };
  });
}

/**
 * The keys and certificates of one key entry: the one named `alias` (exactly, else
 * ignoring case, as keytool treats aliases), or the only one when `alias` is undefined.
 * Certificates paired with another key entry are left out, so they can't join the chosen
 * entry's chain; certificates paired with none (issuers, trusted entries) stay.
 * Several entries and no alias is `KeyAliasRequired`; an alias no entry has is
 * `KeyAliasNotFound`. Both errors name the aliases the file holds.
 */
export function pickKeyEntry(
  contents: Pkcs12Contents,
  alias: string | undefined,
): { keys: Pkcs12Key[]; certificates: Pkcs12Certificate[] } {
  const entries = keyEntriesOf(contents);
  if (alias === undefined && entries.length <= 1) {
    return { keys: contents.keys, certificates: contents.certificates };
  }
  if (alias === undefined) {
    throw new CoreError(
      'KeyAliasRequired',
      `The keystore holds ${entries.length} key entries (${aliasList(entries)}); name the one to use by its alias.`,
      { details: { aliases: entries.map((e) => e.alias ?? null) } },
    );
  }
  let matches = entries.filter((e) => e.alias === alias);
  if (matches.length === 0) {
    const folded = alias.toLowerCase();
    matches = entries.filter((e) => e.alias?.toLowerCase() === folded);
  }
  if (matches.length === 0) {
    throw new CoreError(
      'KeyAliasNotFound',
      entries.length === 0
        ? `The keystore holds no key entry, so none is named ${JSON.stringify(alias)}.`
        : `The keystore has no key entry named ${JSON.stringify(alias)}; it holds ${aliasList(entries)}.`,
      { details: { aliases: entries.map((e) => e.alias ?? null) } },
    );
  }
  if (matches.length > 1) {
    throw new CoreError(
      'KeyAliasRequired',
      `The keystore holds ${matches.length} key entries named ${JSON.stringify(alias)}, so the alias does not tell which one to use; re-export the keystore with distinct aliases.`,
      { details: { aliases: entries.map((e) => e.alias ?? null) } },
    );
  }
  const chosen = matches[0]!;
  const others = new Set(
    contents.pairs
      .filter((p) => contents.keys[p.key] !== chosen.key)
      .map((p) => contents.certificates[p.certificate]),
  );
  return {
    keys: [chosen.key],
    certificates: contents.certificates.filter((c) => !others.has(c)),
  };
}

/** `"a", "b", "c"`, at most a handful, then how many more; an entry without alias is `(no alias)`. */
function aliasList(entries: Pkcs12KeyEntry[]): string {
  const names = entries.map((e) =>
    e.alias === undefined ? '(no alias)' : JSON.stringify(e.alias),
  );
  const shown = names.slice(0, ALIASES_NAMED).join(', ');
  const rest = names.length - ALIASES_NAMED;
  return rest > 0 ? `${shown} and ${rest} more` : shown;
}
