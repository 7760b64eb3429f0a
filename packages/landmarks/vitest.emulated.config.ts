// The CUDA training suite again, on the emulated CUDA device (see vitest.shared.ts).
import { emulatedDeviceTestConfig } from '../../vitest.shared';

export default emulatedDeviceTestConfig(['test/cuda-train.test.ts']);
