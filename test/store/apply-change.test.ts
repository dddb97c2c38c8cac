/**
 * The drivers of the rules' steps (`apply-change.ts`). The rules themselves are proven
 * through real adapters by the shared suite (`store-suite.ts`); SQLite runs them with
 * `runSync`, and these tests cover what only an asynchronous adapter (PostgreSQL, later)
 * will use: waiting for each answer, and a rejection arriving where the step waited.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runAsync, runSync, type Steps } from '../../src/store/apply-change.js';

describe('apply-change drivers', () => {
  it('runAsync hands each awaited answer back to the step that waited for it', async () => {
    function* steps(): Steps<number> {
      const a = (yield Promise.resolve(2)) as number;
      const b = (yield new Promise((resolve) => setTimeout(() => resolve(3), 5))) as number;
      return a * b;
    }
    assert.equal(await runAsync(steps()), 6);
  });

  it('runAsync throws a rejection in at the step that waited, and rejects when no step catches it', async () => {
    const caught: unknown[] = [];
    function* recovering(): Steps<string> {
      try {
        yield Promise.reject(new Error('lost connection'));
      } catch (err) {
        caught.push(err);
      }
      return 'went on';
    }
    assert.equal(await runAsync(recovering()), 'went on');
    assert.equal((caught[0] as Error).message, 'lost connection');

    const finished: string[] = [];
    function* failing(): Steps<string> {
      try {
        yield Promise.reject(new Error('constraint'));
        return 'unreachable';
      } finally {
        finished.push('finally');
      }
    }
    await assert.rejects(runAsync(failing()), /constraint/);
    assert.deepEqual(finished, ['finally']);
  });

  it('runSync runs steps that never wait, and refuses a promise as an adapter bug', () => {
    // Like the rules: a step yields only an answer that is a promise.
    function* double(answer: number | Promise<number>): Steps<number> {
      const value = answer instanceof Promise ? ((yield answer) as number) : answer;
      return value * 2;
    }
    assert.equal(runSync(double(21)), 42);

    const finished: string[] = [];
    function* waiting(): Steps<number> {
      try {
        yield Promise.reject(new Error('never awaited'));
        return 1;
      } finally {
        finished.push('finally');
      }
    }
    assert.throws(() => runSync(waiting()), TypeError);
    assert.deepEqual(finished, ['finally']);
  });
});
