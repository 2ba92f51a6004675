import { createDefaultEsmPreset } from 'ts-jest';

/** @type {import('jest').Config} */
export default {
  ...createDefaultEsmPreset({ tsconfig: 'tsconfig.json' }),
  roots: ['<rootDir>/lib', '<rootDir>/spec', '<rootDir>/example-app'],
  testMatch: ['**/*.spec.ts'],
  // spec/ops: failover, Sentinel (CI-only, `npm run test:ops`, started by .ci/run).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/spec/ops/'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  globalSetup: '<rootDir>/spec/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/spec/helpers/global-teardown.ts',
  setupFiles: ['<rootDir>/spec/helpers/quiet.ts'],
  testTimeout: 30000,
  maxWorkers: 2,
  // `npm run coverage` (or `npm test -- --coverage`): V8's own counters, no instrumentation of the sources.
  coverageProvider: 'v8',
  collectCoverageFrom: ['lib/**/*.ts'],
  coverageReporters: ['text-summary', 'html'],
};
