import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openKeystore } from '../../src/service/keystore.js';
import { isStoreError } from '../../src/store/store.js';
import { tempDir } from '../support/tools.js';

describe('openKeystore', () => {
  it('refuses a data directory that does not exist unless asked to create it', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const dataDir = join(dir, 'typo');
      await assert.rejects(openKeystore(dataDir, {}), (e) => isStoreError(e, 'DataDirMissing'));
      assert.equal(existsSync(dataDir), false, 'nothing created');
      const keystore = await openKeystore(dataDir, {}, { create: true });
      try {
        assert.equal(await keystore.store.revision(), 0);
        assert.ok(keystore.trusted.length > 50, "Node's bundled roots are the trust anchors");
        assert.ok(keystore.now() instanceof Date);
      } finally {
        await keystore.close();
      }
    } finally {
      cleanup();
    }
  });
});
