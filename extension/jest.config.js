// Unit tests of the modules free of JupyterLab (protocol handling, state, diff, cell kinds).
module.exports = {
  testEnvironment: 'node',
  testMatch: ['**/src/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', esModuleInterop: true, strict: true, types: ['jest'] } }]
  }
};
