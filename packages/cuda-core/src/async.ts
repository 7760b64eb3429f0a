// Asynchronous inference: the kernels of a forward pass run on a worker thread while the
// event loop stays free.
import { noGrad } from './autograd.js';
import { typeError } from './errors.js';
import { addon } from './native.js';

/**
 * Runs `fn` without autograd, queueing every kernel it calls instead of running it, then runs
 * the queue on a worker thread and resolves to `fn`'s result once all of those kernels have
 * finished. The event loop stays responsive meanwhile (timers, I/O, other requests).
 *
 * `fn` must be synchronous and must not read tensor values (`data()`, `item()`, ...): the values
 * do not exist until the run finishes, so such a read throws and the run is dropped. Tensors it
 * creates and disposes are freed once the run is done. Until the returned promise settles, a
 * tensor the run uses may not be read, written or passed to a synchronous op (a clear error says
 * so). Several runs may be pending at once; they execute in the order they were started.
 *
 * @example
 * const y = await runAsync(() => model.forward(x));
 * const values = y.data();
 */
export async function runAsync<T>(fn: () => T): Promise<T> {
  if (typeof fn !== 'function') throw typeError('runAsync', 'fn', 'a function', fn);
  addon.beginRecording();
  let result: T;
  try {
    result = noGrad(fn);
    if (result instanceof Promise) throw typeError('runAsync', 'fn', 'a synchronous function', 'a Promise', true);
  } catch (err) {
    addon.discardRecording();
    throw err;
  }
  await addon.endRecording();
  return result;
}
