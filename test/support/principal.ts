import type { Principal } from '../../src/service/principal.js';

/** The principal of test writes: an admin acting from the test suite. */
export const TEST_PRINCIPAL: Principal = { actor: 'test', role: 'admin', source: 'test' };
