// @lrface/sr: face super-resolution.
export {};
