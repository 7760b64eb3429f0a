import { packageTestConfig } from '../../vitest.shared';

export default packageTestConfig({ test: { testTimeout: 300_000 } });
