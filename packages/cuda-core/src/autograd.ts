// Define-by-run autograd: each recorded op leaves a GradNode on its output; backward()
// walks the nodes in reverse topological order calling the gradient registered for the op.
import { formatShape, keep, type Tensor } from './tensor.js';
import { rangeError, stateError, typeError } from './errors.js';

/**
 * Given the gradient of the op's output, returns one gradient (or null) per input, each a
 * new tensor (a view of `gradOutput` is fine; `gradOutput` itself is not).
 */
export type GradientFn = (ctx: GradContext, gradOutput: Tensor) => (Tensor | null)[];

export interface GradContext {
  /** The tensors the op saved for its backward pass, by name. */
  saved: Record<string, Tensor>;
  /** The op's normalised attributes. */
  attrs: Record<string, unknown>;
  /** Shapes of the op's inputs. */
  inputShapes: (readonly number[])[];
  /** Whether input i needs a gradient. */
  needsGrad: boolean[];
  /** Shape of the op's output. */
  outputShape: readonly number[];
}

interface InputEdge {
  node: GradNode | null;
  leaf: Tensor | null;
}

export class GradNode {
  freed = false;
  /**
   * What keeps this node's saved tensors alive: the live tensor it produced, and the unfreed
   * nodes whose inputs it produced. At zero no backward pass can reach it any more, so a
   * forward pass that is never differentiated frees its saved tensors as its outputs are disposed.
   */
  private holders = 0;
  constructor(
    readonly op: string,
    readonly edges: (InputEdge | null)[],
    readonly ctx: GradContext,
  ) {
    for (const edge of edges) edge?.node?.hold();
  }

  hold(): void {
    this.holders++;
  }

  private inputsReleased = false;

  release(): void {
    if (--this.holders <= 0) this.free();
  }

  /** Frees the saved tensors, then lets go of the nodes below. */
  free(): void {
    this.freeSaved();
    this.releaseInputs();
  }

  /** Frees the saved tensors only: a backward pass frees each node as it goes, its inputs once all are done. */
  freeSaved(): void {
    if (this.freed) return;
    this.freed = true;
    for (const t of Object.values(this.ctx.saved)) t.dispose();
    this.ctx.saved = {};
  }

  releaseInputs(): void {
    if (this.inputsReleased) return;
    this.inputsReleased = true;
    for (const edge of this.edges) edge?.node?.release();
  }
}

const gradients = new Map<string, GradientFn>();
let gradEnabled = true;

/** Registers the gradient of an op, by kernel name. */
export function registerGradient(op: string, fn: GradientFn): void {
  if (gradients.has(op)) throw stateError('registerGradient', `a gradient for '${op}' is already registered`);
  gradients.set(op, fn);
}

export function hasGradient(op: string): boolean {
  return gradients.has(op);
}

/** Whether operations are being recorded now. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording operations for autograd (inference, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** Whether an op with these inputs should be recorded. */
export function shouldRecord(inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/**
 * Records `output = op(inputs)` on the tape. `saved` tensors are retained (as views) until
 * the graph is freed, so callers may dispose their own handles.
 */
export function record(
  op: string,
  inputs: readonly (Tensor | null | undefined)[],
  output: Tensor,
  saved: Record<string, Tensor> = {},
  attrs: Record<string, unknown> = {},
): void {
  if (!shouldRecord(inputs)) return;
  if (!gradients.has(op)) throw stateError(op, 'no gradient is registered for this op');
  const edges: (InputEdge | null)[] = inputs.map((t) => {
    if (!t || !t.requiresGrad) return null;
    return t._node ? { node: t._node, leaf: null } : { node: null, leaf: t };
  });
  const retained: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(saved)) retained[name] = keep(t._view(t._offset, t.shape));
  const ctx: GradContext = {
    saved: retained,
    attrs,
    inputShapes: inputs.map((t) => (t ? t.shape : [])),
    needsGrad: edges.map((e) => e !== null),
    outputShape: output.shape,
  };
  output.requiresGrad = true;
  output._node = new GradNode(op, edges, ctx);
  output._node.hold();
}

// Late-bound helpers from the ops (they import this module).
let addInto: (acc: Tensor, g: Tensor) => void;
let add: (a: Tensor, b: Tensor) => Tensor;
let onesLike: (t: Tensor) => Tensor;
export function setAutogradHelpers(helpers: { addInto: typeof addInto; add: typeof add; onesLike: typeof onesLike }): void {
  addInto = helpers.addInto;
  add = helpers.add;
  onesLike = helpers.onesLike;
}

export function runBackward(root: Tensor, gradient: Tensor | undefined, retainGraph: boolean): void {
  const op = 'backward';
  root._storage(op);
  if (!root.requiresGrad) throw stateError(op, 'the tensor does not require grad and has no recorded history');
  if (gradient !== undefined) {
    if (!(gradient as unknown instanceof Object) || (gradient as Tensor).shape === undefined)
      throw typeError(op, 'gradient', 'a tensor', gradient);
    if (gradient.shape.join(',') !== root.shape.join(','))
      throw rangeError(op, 'gradient', `shape ${formatShape(root.shape)}`, `shape ${formatShape(gradient.shape)}`, true);
    if (gradient._deviceIndex !== root._deviceIndex)
      throw stateError(op, `'gradient' is on ${gradient.deviceId} but the tensor is on ${root.deviceId}; move it with .to()`);
  } else if (root.size !== 1) {
    throw rangeError(op, 'gradient', `given for a non-scalar output of shape ${formatShape(root.shape)}`, 'none', true);
  }

  noGrad(() => {
    const seed = gradient ? gradient._view(gradient._offset, gradient.shape) : onesLike(root);
    keep(seed);
    if (!root._node) {
      accumulateLeaf(root, seed);
      return;
    }
    if (root._node.freed) throw stateError(op, 'the graph was already freed by an earlier backward(); pass retainGraph: true');
    const order = topologicalOrder(root._node);
    const pending = new Map<GradNode, Tensor>([[root._node, seed]]);
    const done: GradNode[] = [];
    for (const node of order) {
      const g = pending.get(node);
      pending.delete(node);
      if (!g) continue;
      if (node.freed) throw stateError(op, `the graph was already freed (at '${node.op}'); pass retainGraph: true`);
      const fn = gradients.get(node.op)!;
      const inputGrads = fn(node.ctx, g);
      g.dispose();
      node.edges.forEach((edge, i) => {
        const gi = inputGrads[i];
        if (!edge || !gi) {
          if (gi) gi.dispose();
          return;
        }
        keep(gi);
        if (edge.leaf) accumulateLeaf(edge.leaf, gi);
        else {
          const prev = pending.get(edge.node!);
          pending.set(edge.node!, prev ? accumulate(prev, gi) : gi);
        }
      });
      if (!retainGraph) {
        // Its saved tensors now; the nodes below it only after the walk, which still needs them.
        node.freeSaved();
        done.push(node);
      }
    }
    for (const node of done) node.releaseInputs();
    for (const g of pending.values()) g.dispose();
  });
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.isDisposed) {
    g.dispose();
    return;
  }
  leaf.grad = leaf.grad && !leaf.grad.isDisposed ? accumulate(leaf.grad, g) : g;
}

// Sums two gradients, in place when `acc` owns its memory alone (gradients may be views).
function accumulate(acc: Tensor, g: Tensor): Tensor {
  if (acc._handle.refs === 1) {
    addInto(acc, g);
    g.dispose();
    return acc;
  }
  const sum = keep(add(acc, g));
  acc.dispose();
  g.dispose();
  return sum;
}

function topologicalOrder(root: GradNode): GradNode[] {
  const visited = new Set<GradNode>();
  const postorder: GradNode[] = [];
  // Iterative DFS: deep nets would overflow the JS stack with recursion.
  const stack: { node: GradNode; next: number }[] = [{ node: root, next: 0 }];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next < top.node.edges.length) {
      const edge = top.node.edges[top.next++];
      const child = edge?.node;
      if (child && !visited.has(child)) {
        visited.add(child);
        stack.push({ node: child, next: 0 });
      }
    } else {
      postorder.push(top.node);
      stack.pop();
    }
  }
  return postorder.reverse();
}
