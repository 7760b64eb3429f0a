// @lrface/landmarks: landmarks directly on tiny faces.
export {};
