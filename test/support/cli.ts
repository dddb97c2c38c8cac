/**
 * The CLI run in-process, as a test drives it: `main` with buffers for its output.
 */
import { main } from '../../src/cli/main.js';

/** What one command did: its exit code and everything it printed. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `certkeeper ...argv` in this process with `env` (empty unless given). */
export async function runCli(
  argv: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(
    argv,
    {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
    },
    env,
  );
  return { code, stdout, stderr };
}
