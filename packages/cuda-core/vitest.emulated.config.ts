// The CUDA device suites again, on the emulated CUDA device (see vitest.shared.ts).
import { emulatedDeviceTestConfig } from '../../vitest.shared';

export default emulatedDeviceTestConfig(['test/cuda.test.ts', 'test/cuda-conv.test.ts', 'test/cuda-cudnn-ops.test.ts']);
