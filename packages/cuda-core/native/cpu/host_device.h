// LR_HOST_DEVICE marks the functions shared by the CPU kernels and the CUDA kernels (compiled
// for both by nvcc, plain inline functions elsewhere).
#pragma once

#ifdef __CUDACC__
#define LR_HOST_DEVICE __host__ __device__
#else
#define LR_HOST_DEVICE
#endif
