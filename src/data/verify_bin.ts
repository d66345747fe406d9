/**
 * insightface verification `.bin` files (lfw.bin, cfp_fp.bin, agedb_30.bin, ...): a Python
 * pickle of `(list of encoded images, list of bools)`, images in pairs, one bool per pair.
 *
 * The pickle reader here is deliberately minimal and safe: it understands only the opcodes that
 * plain data needs (bytes/str, lists, tuples, bools, small ints, None, the memo, framing) in
 * protocols 2 to 5, and it never imports or calls anything. The single exception is the
 * fixed shape Python 3 uses for `bytes` under protocol 2, `_codecs.encode(<str>, "latin1")`,
 * which is recognised as data and turned into bytes without calling anything. Every other
 * `GLOBAL`, `REDUCE` or unknown opcode is refused with an error naming it and its offset.
 *
 * @module
 */

/**
 * A value read from a pickle: bytes (Python 2 `str` and Python 3 `bytes`) as `Uint8Array`
 * views into the input, Python 3 `str` as `string`, lists as arrays, tuples as frozen arrays.
 */
export type PickleValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | PickleValue[]
  | readonly PickleValue[];

const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK",
  0x29: "EMPTY_TUPLE",
  0x2e: "STOP",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
  0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES",
  0x46: "FLOAT",
  0x47: "BINFLOAT",
  0x49: "INT",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4c: "LONG",
  0x4d: "BININT2",
  0x4e: "NONE",
  0x50: "PERSID",
  0x51: "BINPERSID",
  0x52: "REDUCE",
  0x53: "STRING",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x56: "UNICODE",
  0x58: "BINUNICODE",
  0x5d: "EMPTY_LIST",
  0x61: "APPEND",
  0x62: "BUILD",
  0x63: "GLOBAL",
  0x64: "DICT",
  0x65: "APPENDS",
  0x67: "GET",
  0x68: "BINGET",
  0x69: "INST",
  0x6a: "LONG_BINGET",
  0x6c: "LIST",
  0x6f: "OBJ",
  0x70: "PUT",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x73: "SETITEM",
  0x74: "TUPLE",
  0x75: "SETITEMS",
  0x7d: "EMPTY_DICT",
  0x80: "PROTO",
  0x81: "NEWOBJ",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x8a: "LONG1",
  0x8b: "LONG4",
  0x8c: "SHORT_BINUNICODE",
  0x8d: "BINUNICODE8",
  0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x92: "NEWOBJ_EX",
  0x93: "STACK_GLOBAL",
  0x94: "MEMOIZE",
  0x95: "FRAME",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

/** The stack marker pushed by MARK. */
const MARK = Symbol("MARK");
/** `_codecs.encode`, recognised as data only: never called. */
const CODECS_ENCODE = Symbol("_codecs.encode");

type Item = PickleValue | typeof MARK | typeof CODECS_ENCODE;

/** Options naming where bytes came from, for error messages. */
export interface PickleOptions {
  /** A file name to put in error messages. */
  readonly file?: string;
}

/**
 * Reads a pickle of plain data (protocols 2 to 5) without executing anything: bytes, str,
 * lists, tuples, bools, None and small ints, with memo and framing opcodes. Python 3's
 * protocol-2 encoding of `bytes` (`_codecs.encode(str, "latin1")`) is recognised as bytes.
 *
 * @param bytes The pickle.
 * @param options `file`: named in error messages.
 * @returns The unpickled value; bytes are views into `bytes`.
 * @throws {TypeError} On any other opcode (GLOBAL, REDUCE, dicts, floats, numpy, ...), naming
 *   the opcode and its offset, and on a malformed stack.
 * @throws {RangeError} On truncated data.
 *
 * @example Read `[True, b"ab"]` pickled with protocol 2 by hand
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePickle } from "./verify_bin.ts";
 * // PROTO 2, EMPTY_LIST, MARK, NEWTRUE, SHORT_BINSTRING "ab", APPENDS, STOP
 * const p = new Uint8Array([0x80, 2, 0x5d, 0x28, 0x88, 0x55, 2, 97, 98, 0x65, 0x2e]);
 * const v = parsePickle(p) as [boolean, Uint8Array];
 * assert.equal(v[0], true);
 * assert.deepEqual(Array.from(v[1]), [97, 98]);
 * ```
 */
export function parsePickle(bytes: Uint8Array, options: PickleOptions = {}): PickleValue {
  const where = options.file === undefined ? "" : ` in ${options.file}`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Item[] = [];
  const memo = new Map<number, Item>();
  let pos = 0;
  let opPos = 0;
  let opName = "";

  const need = (n: number): number => {
    if (pos + n > bytes.length) {
      throw new RangeError(
        `Truncated pickle${where}: opcode ${opName} at offset ${opPos} needs ${n} bytes at ` +
          `offset ${pos}, ${bytes.length - pos} left`,
      );
    }
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const i32 = () => view.getInt32(need(4), true);
  const u64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(
        `Pickle length ${v} of ${opName} at offset ${opPos}${where} is too large`,
      );
    }
    return Number(v);
  };
  const take = (n: number) => bytes.subarray(need(n), pos);
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new RangeError(`Truncated pickle${where}: ${opName} at offset ${opPos}`);
    const s = String.fromCharCode(...bytes.subarray(pos, Math.min(end, pos + 256)));
    pos = end + 1;
    return s;
  };
  const utf8 = (n: number) => new TextDecoder("utf-8", { fatal: true }).decode(take(n));
  const refuse = (detail = ""): never => {
    throw new TypeError(
      `Refusing pickle opcode ${opName} (0x${bytes[opPos].toString(16).padStart(2, "0")}) at ` +
        `offset ${opPos}${where}${detail}: only plain data (bytes, str, lists, tuples, bools) ` +
        `is read, nothing is executed`,
    );
  };
  const pop = (): Item => {
    if (stack.length === 0) {
      throw new TypeError(
        `Malformed pickle${where}: ${opName} at offset ${opPos} on an empty stack`,
      );
    }
    return stack.pop()!;
  };
  const data = (x: Item): PickleValue => {
    if (x === MARK || x === CODECS_ENCODE) {
      throw new TypeError(
        `Malformed pickle${where}: ${opName} at offset ${opPos} got ` +
          `${x === MARK ? "a MARK" : "_codecs.encode"} where a value was expected`,
      );
    }
    return x;
  };
  const popMark = (): PickleValue[] => {
    const m = stack.lastIndexOf(MARK);
    if (m < 0) {
      throw new TypeError(`Malformed pickle${where}: ${opName} at offset ${opPos} without MARK`);
    }
    const items = stack.splice(m).slice(1);
    return items.map(data);
  };
  const list = (x: Item): PickleValue[] => {
    if (!Array.isArray(x) || Object.isFrozen(x)) {
      throw new TypeError(`Malformed pickle${where}: ${opName} at offset ${opPos} needs a list`);
    }
    return x as PickleValue[];
  };
  const tuple = (items: PickleValue[]) => Object.freeze(items) as readonly PickleValue[];

  while (true) {
    opPos = pos;
    const op = u8();
    opName = OPCODE_NAMES[op] ?? "unknown";
    switch (op) {
      case 0x80: { // PROTO
        const proto = u8();
        if (proto < 2 || proto > 5) refuse(` (protocol ${proto}; 2 to 5 are read)`);
        break;
      }
      case 0x95: { // FRAME: a length hint; a frame past the end means the file was cut short
        const n = u64();
        if (n > bytes.length - pos) {
          throw new RangeError(
            `Truncated pickle${where}: FRAME at offset ${opPos} announces ${n} bytes, ` +
              `${bytes.length - pos} left`,
          );
        }
        break;
      }
      case 0x2e: { // STOP
        const result = data(pop());
        if (stack.length !== 0) {
          throw new TypeError(
            `Malformed pickle${where}: STOP at offset ${opPos} leaves ${stack.length} items on the stack`,
          );
        }
        return result;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str = bytes)
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x54: { // BINSTRING (signed length)
        const n = i32();
        if (n < 0) refuse(` (negative length ${n})`);
        stack.push(take(n));
        break;
      }
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(u8()));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(u32()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(u64()));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: { // TUPLE3
        const n = op - 0x84;
        const items: Item[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        // A tuple may hold _codecs.encode's arguments only, never the function itself.
        stack.push(tuple(items.map(data)));
        break;
      }
      case 0x61: { // APPEND
        const v = data(pop());
        list(stack[stack.length - 1]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const target = list(stack[stack.length - 1]);
        for (const v of items) target.push(v);
        break;
      }
      case 0x71: // BINPUT
      case 0x72: // LONG_BINPUT
      case 0x94: { // MEMOIZE
        const key = op === 0x71 ? u8() : op === 0x72 ? u32() : memo.size;
        if (stack.length === 0) pop();
        memo.set(key, stack[stack.length - 1]);
        break;
      }
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) {
          throw new TypeError(
            `Malformed pickle${where}: ${opName} at offset ${opPos} reads memo ${key}, never stored`,
          );
        }
        stack.push(memo.get(key)!);
        break;
      }
      case 0x63: { // GLOBAL: only `_codecs encode`, as a marker, never resolved or called
        const module = line();
        const name = line();
        if (module === "_codecs" && name === "encode") {
          stack.push(CODECS_ENCODE);
          break;
        }
        const numpy = module.startsWith("numpy")
          ? "; numpy-typed pickles are not supported (store lists of bytes and bools)"
          : "";
        refuse(` ${JSON.stringify(`${module} ${name}`)}${numpy}`);
        break;
      }
      case 0x52: { // REDUCE: only _codecs.encode(<str>, "latin1") -> bytes
        const args = pop();
        const fn = pop();
        if (
          fn === CODECS_ENCODE && Array.isArray(args) && Object.isFrozen(args) &&
          args.length === 2 && typeof args[0] === "string" &&
          (args[1] === "latin1" || args[1] === "latin-1")
        ) {
          const s = args[0] as string;
          const out = new Uint8Array(s.length);
          for (let i = 0; i < s.length; i++) {
            const c = s.charCodeAt(i);
            if (c > 0xff) refuse(` (_codecs.encode of a non-latin1 character U+${c.toString(16)})`);
            out[i] = c;
          }
          stack.push(out);
          break;
        }
        refuse(
          fn === CODECS_ENCODE ? ' (_codecs.encode with arguments other than (str, "latin1"))' : "",
        );
        break;
      }
      case 0x93: { // STACK_GLOBAL: name the target in the refusal when it is readable
        const name = stack.at(-1);
        const module = stack.at(-2);
        const target = typeof module === "string" && typeof name === "string"
          ? ` ${JSON.stringify(`${module} ${name}`)}${
            module.startsWith("numpy") ? "; numpy-typed pickles are not supported" : ""
          }`
          : "";
        refuse(target);
        break;
      }
      default:
        refuse();
    }
  }
}

/** The contents of an insightface verification `.bin` file. */
export interface VerifyBin {
  /** Encoded images (JPEG/PNG bytes), two per pair: pair k is images 2k and 2k + 1. */
  readonly images: Uint8Array[];
  /** One flag per pair: true when both images show the same identity. */
  readonly issame: boolean[];
}

/**
 * Parses an insightface verification `.bin` (a pickle of `(list of image bytes, list of
 * bools)`, protocol 2 with `str`/`bytes` images or protocols 3 to 5 with `bytes`) without
 * executing anything. Checks that there are exactly two images per flag.
 *
 * @param bytes The file contents.
 * @param options `file`: named in error messages.
 * @returns `images` (views into `bytes`) and `issame`.
 * @throws {TypeError} When the pickle holds anything else (see {@linkcode parsePickle}).
 *
 * @example A one-pair file pickled with protocol 4 by hand
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseVerifyBin } from "./verify_bin.ts";
 * // PROTO 4, EMPTY_LIST, MARK, SHORT_BINBYTES x2, APPENDS, EMPTY_LIST, NEWFALSE, APPEND, TUPLE2, STOP
 * const p = new Uint8Array([
 *   0x80, 4, 0x5d, 0x28, 0x43, 1, 7, 0x43, 1, 8, 0x65, 0x5d, 0x89, 0x61, 0x86, 0x2e,
 * ]);
 * const { images, issame } = parseVerifyBin(p);
 * assert.equal(images.length, 2);
 * assert.deepEqual(issame, [false]);
 * ```
 */
export function parseVerifyBin(bytes: Uint8Array, options: PickleOptions = {}): VerifyBin {
  const what = options.file ?? "verification .bin";
  const top = parsePickle(bytes, options);
  if (!Array.isArray(top) || top.length !== 2) {
    throw new TypeError(`${what} holds ${describe(top)}, expected a pair (images, issame)`);
  }
  const [bins, flags] = top;
  if (!Array.isArray(bins) || !Array.isArray(flags)) {
    throw new TypeError(
      `${what} holds (${describe(bins)}, ${
        describe(flags)
      }), expected (list of bytes, list of bools)`,
    );
  }
  const images = bins.map((b, i) => {
    if (!(b instanceof Uint8Array)) {
      throw new TypeError(`${what}: image ${i} is ${describe(b)}, expected bytes`);
    }
    return b;
  });
  const issame = flags.map((f, i) => {
    if (typeof f !== "boolean") {
      throw new TypeError(`${what}: issame ${i} is ${describe(f)}, expected a bool`);
    }
    return f;
  });
  if (images.length !== 2 * issame.length) {
    throw new RangeError(
      `${what} has ${images.length} images and ${issame.length} issame flags, ` +
        `expected 2 images per flag (${2 * issame.length})`,
    );
  }
  return { images, issame };
}

/**
 * Reads and parses a verification `.bin` file (needs `--allow-read`).
 *
 * @param path The file.
 * @returns `images` and `issame`, as {@linkcode parseVerifyBin}.
 *
 * @example Count pairs of a benchmark file (defined here, run on a real file)
 * ```ts
 * import { readVerifyBin } from "./verify_bin.ts";
 * async function countPairs(path: string): Promise<number> {
 *   return (await readVerifyBin(path)).issame.length;
 * }
 * ```
 */
export async function readVerifyBin(path: string | URL): Promise<VerifyBin> {
  const file = path instanceof URL ? decodeURIComponent(path.pathname) : path;
  return parseVerifyBin(await Deno.readFile(path), { file });
}

function describe(v: PickleValue): string {
  if (v === null) return "None";
  if (v instanceof Uint8Array) return `bytes of length ${v.length}`;
  if (Array.isArray(v)) {
    return `a ${Object.isFrozen(v) ? "tuple" : "list"} of ${v.length}`;
  }
  return `${typeof v} ${JSON.stringify(v)}`;
}
