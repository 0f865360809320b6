import * as path from 'path';

/** Repo root from dist/test/unit/config. */
export const ROOT = path.resolve(__dirname, '../../../..');
export const FIXTURES = path.join(ROOT, 'test/fixtures/config');
export const CLI = path.join(ROOT, 'dist/agent/cli.js');

/** Distinctive keys: any test can assert they never appear in output. */
export const OVERLAY_KEY = 'Ov3rlayKeyForTestsOnly0123456789';
export const CLUSTER_KEY = 'C1usterKeyForTestsOnly0123456789';
export const AGENT_KEY = 'Ag3ntKeyForTestsOnly012345678901';

export function baseConfig(): Record<string, unknown> {
  return { node: 'venus', master: 'mercury', overlay_key: OVERLAY_KEY, cluster_key: CLUSTER_KEY };
}
