import base from './jest.config.js';

/**
 * The operations suite (issue 17): Redis Cluster failover and Sentinel under traffic from several app
 * processes. CI-only (`npm run test:ops`, started by .ci/run): each file starts its own redis-servers.
 * @type {import('jest').Config}
 */
export default {
  ...base,
  roots: ['<rootDir>/spec'],
  testMatch: ['<rootDir>/spec/ops/**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 120000,
  maxWorkers: 1,
};
