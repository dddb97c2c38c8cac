import forge from 'node-forge';

/**
 * The ciphers of old PKCS#8 and PKCS#12 files that Node 20's OpenSSL 3 offers only with
 * its legacy provider, which Node does not load: single DES, RC2 (any effective key size)
 * and RC4. `crypto.getCiphers()` lists none of them and `createDecipheriv` refuses them,
 * so DES and RC2 come from node-forge (this is its only user) and RC4 is a few lines
 * here. Everything else (AES, triple DES, the hashes, PBKDF2, scrypt) is node:crypto.
 */
export type LegacyCipher = 'des-cbc' | 'rc2-cbc' | 'rc4';

/** Raw decryption with a legacy cipher: CBC without removing the padding, or RC4. */
export function legacyDecrypt(
  cipher: LegacyCipher,
  key: Buffer,
  iv: Buffer,
  data: Buffer,
  rc2Bits: number,
): Buffer {
  switch (cipher) {
    case 'rc4':
      return rc4(key, data);
    case 'rc2-cbc': {
      const c = forge.rc2.createDecryptionCipher(forgeBytes(key), rc2Bits);
      c.start(forgeBytes(iv));
      c.update(forgeBytes(data));
      c.finish(() => true);
      return Buffer.from(c.output.getBytes(), 'binary');
    }
    case 'des-cbc': {
      const c = forge.cipher.createDecipher('DES-CBC', forgeBytes(key));
      c.start({ iv: forgeBytes(iv) });
      c.update(forgeBytes(data));
      // forge's types omit finish's padding callback; returning true keeps the padding.
      (c as unknown as { finish(pad: () => boolean): boolean }).finish(() => true);
      return Buffer.from(c.output.getBytes(), 'binary');
    }
  }
}

const forgeBytes = (b: Buffer) => forge.util.createBuffer(b.toString('binary'));

/** RC4 (only the PKCS#12 RC4 PBE schemes use it). */
function rc4(key: Buffer, data: Buffer): Buffer {
  const s = new Uint8Array(256);
  for (let i = 0; i < 256; i++) s[i] = i;
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + s[i]! + key[i % key.length]!) & 0xff;
    [s[i], s[j]] = [s[j]!, s[i]!];
  }
  const out = Buffer.alloc(data.length);
  for (let n = 0, i = 0, j = 0; n < data.length; n++) {
    i = (i + 1) & 0xff;
    j = (j + s[i]!) & 0xff;
    [s[i], s[j]] = [s[j]!, s[i]!];
    out[n] = data[n]! ^ s[(s[i]! + s[j]!) & 0xff]!;
  }
  return out;
}
