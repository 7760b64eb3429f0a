// A restricted unpickler for PyTorch checkpoints. It builds only plain data (numbers,
// strings, bytes, lists, tuples, dicts, OrderedDicts), tensor placeholders and opaque
// objects with their state; it calls nothing. A REDUCE of any callable outside a short list
// of PyTorch rebuild functions is refused with an error naming it.

/** A class or function named by the pickle (never resolved to code). */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * An object of a pickled class: its class name, the state BUILD gave it, and the items or
 * elements pickled into it when the class derives from dict or list.
 */
export class PickledObject {
  state: unknown = undefined;
  readonly dictItems = new Map<unknown, unknown>();
  readonly listItems: unknown[] = [];
  constructor(readonly className: string, readonly args: unknown[]) {}
}

/** A tensor as the checkpoint describes it, resolved against storages by the loader. */
export class TensorRef {
  constructor(
    readonly storage: unknown,
    readonly storageOffset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

/** A persistent id the caller must resolve (storages, and classes in legacy checkpoints). */
export type PersistentLoad = (pid: unknown) => unknown;

export class UnpicklingError extends Error {}

const SAFE_REDUCE = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.nn.parameter.Parameter',
  'torch.nn.backends.thnn._get_thnn_function_backend',
  'torch.Size',
  'builtins.set',
  'builtins.frozenset',
  '__builtin__.set',
  'copyreg._reconstructor',
  'copy_reg._reconstructor',
  'torch.device',
  'builtins.slice',
]);

function applySafe(fn: PickleGlobal, args: unknown[]): unknown {
  switch (fn.qualified) {
    case 'collections.OrderedDict': {
      const m = new Map<unknown, unknown>();
      const items = (args[0] as unknown[][] | undefined) ?? [];
      for (const [k, v] of items) m.set(k, v);
      return m;
    }
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2':
      return new TensorRef(args[0], args[1] as number, args[2] as number[], args[3] as number[]);
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
    case 'torch.nn.parameter.Parameter':
      return args[0];
    case 'torch._tensor._rebuild_from_type_v2': {
      // (func, type, args, state): a tensor subclass; rebuild the plain tensor with func.
      const [func, , inner] = args as [unknown, unknown, unknown[]];
      if (!(func instanceof PickleGlobal)) throw new UnpicklingError('_rebuild_from_type_v2 without a named rebuild function');
      return applySafe(func, inner ?? []);
    }
    case 'torch.nn.backends.thnn._get_thnn_function_backend':
    case 'torch.device':
    case 'builtins.slice':
      return null;
    case 'torch.Size':
      return [...((args[0] as number[]) ?? [])];
    case 'builtins.set':
    case 'builtins.frozenset':
    case '__builtin__.set':
      return new Set((args[0] as unknown[]) ?? []);
    case 'copyreg._reconstructor':
    case 'copy_reg._reconstructor': {
      const cls = args[0];
      return new PickledObject(cls instanceof PickleGlobal ? cls.qualified : String(cls), []);
    }
  }
  throw new UnpicklingError(`refusing to call ${fn.qualified}`);
}

const MARK = Symbol('mark');

/**
 * Unpickles one pickle starting at `offset` (protocols 0-5 as PyTorch writes them).
 * Returns the value and the offset after its STOP opcode. `source` names the file in errors.
 */
export function unpickle(bytes: Uint8Array, options: { offset?: number; source?: string; persistentLoad?: PersistentLoad } = {}): { value: unknown; end: number } {
  const source = options.source ?? 'pickle';
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = options.offset ?? 0;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const fail = (why: string): never => {
    throw new UnpicklingError(`${source}: bad pickle at byte ${pos}: ${why}`);
  };
  const need = (n: number) => {
    if (pos + n > buf.length) fail(`truncated (needs ${n} more bytes)`);
  };
  const u8 = () => (need(1), buf[pos++]);
  const u16 = () => (need(2), (pos += 2), buf.readUInt16LE(pos - 2));
  const i32 = () => (need(4), (pos += 4), buf.readInt32LE(pos - 4));
  const u32 = () => (need(4), (pos += 4), buf.readUInt32LE(pos - 4));
  const u64 = () => (need(8), (pos += 8), Number(buf.readBigUInt64LE(pos - 8)));
  const bytesOf = (n: number) => (need(n), (pos += n), buf.subarray(pos - n, pos));
  const line = () => {
    const end = buf.indexOf(10, pos);
    if (end < 0) fail('unterminated line');
    const s = buf.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = () => (stack.length === 0 ? fail('stack underflow') : stack.pop());
  const top = () => (stack.length === 0 ? fail('stack underflow') : stack[stack.length - 1]);
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK');
    const items = stack.splice(m!);
    return items;
  };
  const longFrom = (b: Buffer): number => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return Number(v);
  };
  // Items go into dicts, or into the item store of an object whose class derives from dict;
  // never onto arbitrary JS objects (no key from the file becomes a property name).
  const setItem = (container: unknown, k: unknown, v: unknown) => {
    if (container instanceof Map) container.set(k, v);
    else if (container instanceof PickledObject) container.dictItems.set(k, v);
    else fail('SETITEM on a non-dict');
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x2e: return { value: pop(), end: pos }; // STOP
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(longFrom(bytesOf(u8()))); break; // LONG1
      case 0x8b: { // LONG4: checkpoints hold small integers; a huge one only costs time
        const n = i32();
        if (n < 0 || n > 64) fail(`LONG4 of ${n} bytes`);
        stack.push(longFrom(bytesOf(n)));
        break;
      }
      case 0x49: { // INT
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10));
        break;
      }
      case 0x4c: stack.push(Number.parseInt(line().replace(/L$/, ''), 10)); break; // LONG
      case 0x47: need(8); stack.push(buf.readDoubleBE(pos)); pos += 8; break; // BINFLOAT
      case 0x46: stack.push(Number.parseFloat(line())); break; // FLOAT
      case 0x58: stack.push(bytesOf(u32()).toString('utf8')); break; // BINUNICODE
      case 0x8c: stack.push(bytesOf(u8()).toString('utf8')); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(bytesOf(u64()).toString('utf8')); break; // BINUNICODE8
      case 0x55: stack.push(bytesOf(u8()).toString('latin1')); break; // SHORT_BINSTRING
      case 0x54: stack.push(bytesOf(i32()).toString('latin1')); break; // BINSTRING
      case 0x43: stack.push(Uint8Array.from(bytesOf(u8()))); break; // SHORT_BINBYTES
      case 0x42: stack.push(Uint8Array.from(bytesOf(u32()))); break; // BINBYTES
      case 0x8e: stack.push(Uint8Array.from(bytesOf(u64()))); break; // BINBYTES8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape, ASCII in practice)
      case 0x53: stack.push(line().replace(/^'|'$/g, '')); break; // STRING
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { // DICT
        const items = popMark();
        const m = new Map();
        for (let i = 0; i + 1 < items.length; i += 2) m.set(items[i], items[i + 1]);
        stack.push(m);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const l = top();
        if (Array.isArray(l)) l.push(v);
        else if (l instanceof PickledObject) l.listItems.push(v);
        else fail('APPEND on a non-list');
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (Array.isArray(l)) for (const i of items) l.push(i);
        else if (l instanceof PickledObject) for (const i of items) l.listItems.push(i);
        else if (l instanceof Set) items.forEach((i) => l.add(i));
        else fail('APPENDS on a non-list');
        break;
      }
      case 0x90: { const items = popMark(); const s = top(); if (!(s instanceof Set)) fail('ADDITEMS on a non-set'); items.forEach((i) => (s as Set<unknown>).add(i)); break; } // ADDITEMS
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = top();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(Number.parseInt(line(), 10), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : Number.parseInt(line(), 10);
        if (!memo.has(k)) fail(`memo key ${k} missing`);
        stack.push(memo.get(k));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        stack.push(new PickleGlobal(module, name));
        break;
      }
      case 0x93: { const name = pop(); const module = pop(); stack.push(new PickleGlobal(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PickleGlobal)) fail('REDUCE of something that is not a named global');
        try {
          stack.push(applySafe(fn as PickleGlobal, (args as unknown[]) ?? []));
        } catch (err) {
          fail((err as Error).message);
        }
        break;
      }
      case 0x81: case 0x92: { // NEWOBJ, NEWOBJ_EX
        if (op === 0x92) pop();
        const args = pop() as unknown[];
        const cls = pop();
        const name = cls instanceof PickleGlobal ? cls.qualified : typeof cls === 'string' ? cls : 'object';
        stack.push(new PickledObject(name, args ?? []));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PickledObject) obj.state = state;
        // BUILD state of a dict is its attributes (a state dict's _metadata), not items; for
        // anything else (tensors' metadata) it carries nothing a state dict needs.
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('persistent id without a loader');
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!options.persistentLoad) fail('persistent id without a loader');
        stack.push(options.persistentLoad!(pid));
        break;
      }
      default:
        fail(`unsupported opcode 0x${op.toString(16)}`);
    }
  }
}
