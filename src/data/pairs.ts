/**
 * LFW `pairs.txt` files: the verification protocol's list of image pairs, split into folds.
 *
 * Format: a header `<folds> <pairs>`, then per fold `<pairs>` lines `name i j` (two images of one
 * identity) followed by `<pairs>` lines `name1 i name2 j` (two identities); indices are 1-based
 * and name the image `<name>/<name>_<4-digit index>.jpg`. LFW's own file is `10 300`.
 *
 * @module
 */

/** One pair by identity names and 1-based image indices, as {@linkcode formatPairs} takes it. */
export interface PairSpec {
  /** Identity of the first image. */
  readonly nameA: string;
  /** 1-based image index of the first image. */
  readonly indexA: number;
  /** Identity of the second image (equal to `nameA` for a same-identity pair). */
  readonly nameB: string;
  /** 1-based image index of the second image. */
  readonly indexB: number;
  /** 0-based fold. */
  readonly fold: number;
}

/** One parsed pair: image paths relative to the dataset root, and whether it is a match. */
export interface LfwPair extends PairSpec {
  /** Path of the first image, `<nameA>/<nameA>_<indexA, 4 digits><ext>`. */
  readonly a: string;
  /** Path of the second image. */
  readonly b: string;
  /** True for a same-identity line (`name i j`). */
  readonly same: boolean;
  /** 1-based line number in the file. */
  readonly line: number;
}

/** A parsed pairs file. */
export interface PairsFile {
  /** Number of folds (10 for LFW). */
  readonly folds: number;
  /** Same-identity pairs per fold, and as many different-identity pairs (300 for LFW). */
  readonly pairsPerFold: number;
  /** All pairs in file order. */
  readonly pairs: LfwPair[];
}

/** Options of {@linkcode parsePairs}. */
export interface ParsePairsOptions {
  /** A file name to put in error messages. */
  readonly file?: string;
  /** Image file extension used in the paths; default `".jpg"`. */
  readonly ext?: string;
}

/**
 * The LFW path of an identity's image: `<name>/<name>_<index, 4 digits><ext>`.
 *
 * @param name Identity name.
 * @param index 1-based image index.
 * @param options `ext`: file extension, default `".jpg"`.
 * @returns The path relative to the dataset root.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lfwImagePath } from "./pairs.ts";
 * assert.equal(lfwImagePath("Aaron_Peirsol", 2), "Aaron_Peirsol/Aaron_Peirsol_0002.jpg");
 * ```
 */
export function lfwImagePath(name: string, index: number, options: { ext?: string } = {}): string {
  return `${name}/${name}_${String(index).padStart(4, "0")}${options.ext ?? ".jpg"}`;
}

function positive(s: string): number {
  return /^[0-9]+$/.test(s) && Number(s) > 0 && Number.isSafeInteger(Number(s)) ? Number(s) : NaN;
}

/**
 * Parses an LFW `pairs.txt`. Accepted shapes, each unambiguous:
 * - `<folds> <pairs>` header (LFW's `pairs.txt`): `folds * 2 * pairs` lines follow, each block
 *   of `2 * pairs` lines is a fold holding `pairs` same and `pairs` different lines (the usual
 *   order is same first; any order within a fold is accepted, the kind is told by the field count).
 * - `<pairs>` header (`pairsDevTrain.txt`, `pairsDevTest.txt`): one fold.
 * - no header: one fold, as many same as different lines.
 *
 * @param text The file contents.
 * @param options `file`: named in errors; `ext`: image extension for the paths.
 * @returns The folds, pairs per fold, and the pairs with paths.
 * @throws {RangeError} On malformed lines or wrong counts, naming the line number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePairs } from "./pairs.ts";
 * const p = parsePairs("1 1\nAda 1 2\nAda 1 Bob 3\n");
 * assert.equal(p.pairs[1].b, "Bob/Bob_0003.jpg");
 * assert.deepEqual(p.pairs.map((x) => x.same), [true, false]);
 * ```
 */
export function parsePairs(text: string, options: ParsePairsOptions = {}): PairsFile {
  const where = options.file === undefined ? "" : ` of ${options.file}`;
  const rows: { line: number; fields: string[] }[] = [];
  text.split("\n").forEach((raw, i) => {
    const t = raw.trim();
    if (t !== "") rows.push({ line: i + 1, fields: t.split(/\s+/) });
  });
  let header: { folds: number; pairs: number; line: number } | undefined;
  if (rows.length > 0 && rows[0].fields.length <= 2) {
    const h = rows.shift()!;
    const nums = h.fields.map(positive);
    if (nums.some(Number.isNaN)) {
      throw new RangeError(
        `Bad header at line ${h.line}${where}: ${JSON.stringify(h.fields.join(" "))}, ` +
          `expected "<folds> <pairs per fold>" or "<pairs>" with positive integers`,
      );
    }
    header = nums.length === 2
      ? { folds: nums[0], pairs: nums[1], line: h.line }
      : { folds: 1, pairs: nums[0], line: h.line };
  }

  const pairs: LfwPair[] = [];
  const perFold = header === undefined ? rows.length : 2 * header.pairs;
  for (const [k, { line, fields }] of rows.entries()) {
    const fold = Math.floor(k / perFold);
    let spec: PairSpec;
    if (fields.length === 3) {
      spec = {
        nameA: fields[0],
        indexA: positive(fields[1]),
        nameB: fields[0],
        indexB: positive(fields[2]),
        fold,
      };
    } else if (fields.length === 4) {
      spec = {
        nameA: fields[0],
        indexA: positive(fields[1]),
        nameB: fields[2],
        indexB: positive(fields[3]),
        fold,
      };
      if (spec.nameA === spec.nameB) {
        throw new RangeError(
          `Line ${line}${where} is a different-identity line naming ${spec.nameA} twice`,
        );
      }
    } else {
      throw new RangeError(
        `Bad pair at line ${line}${where}: ${JSON.stringify(fields.join(" "))}, expected ` +
          `"name i j" (same identity) or "name1 i name2 j" (different identities)`,
      );
    }
    if (Number.isNaN(spec.indexA) || Number.isNaN(spec.indexB)) {
      throw new RangeError(
        `Bad image index at line ${line}${where}: ${JSON.stringify(fields.join(" "))}, ` +
          `expected 1-based positive integers`,
      );
    }
    pairs.push({
      ...spec,
      a: lfwImagePath(spec.nameA, spec.indexA, options),
      b: lfwImagePath(spec.nameB, spec.indexB, options),
      same: fields.length === 3,
      line,
    });
  }

  if (header === undefined) {
    if (pairs.length === 0) throw new RangeError(`Pairs file${where} is empty, expected pairs`);
    const same = pairs.filter((p) => p.same).length;
    if (same !== pairs.length - same) {
      throw new RangeError(
        `Pairs file${where} has no header and ${same} same / ${pairs.length - same} different ` +
          `pairs; add a "<folds> <pairs>" header or balance the two kinds`,
      );
    }
    return { folds: 1, pairsPerFold: same, pairs };
  }

  const want = header.folds * 2 * header.pairs;
  if (pairs.length !== want) {
    const at = pairs.length > want
      ? `the first extra one is line ${pairs[want].line}`
      : `the last one is line ${pairs.at(-1)?.line ?? header.line}`;
    throw new RangeError(
      `Pairs file${where} has ${pairs.length} pair lines after the header ` +
        `"${header.folds} ${header.pairs}" (line ${header.line}), expected ${want} ` +
        `(${header.folds} folds x 2 x ${header.pairs}); ${at}`,
    );
  }
  for (let f = 0; f < header.folds; f++) {
    const block = pairs.slice(f * perFold, (f + 1) * perFold);
    const same = block.filter((p) => p.same).length;
    if (same !== header.pairs) {
      throw new RangeError(
        `Fold ${f} (lines ${block[0].line}-${block.at(-1)!.line})${where} has ${same} same and ` +
          `${block.length - same} different pairs, expected ${header.pairs} of each`,
      );
    }
  }
  return { folds: header.folds, pairsPerFold: header.pairs, pairs };
}

/**
 * Writes pairs in the LFW `pairs.txt` format: header `<folds> <pairs>`, then per fold its
 * same-identity lines followed by its different-identity lines (each kind in the given order).
 * A pair is same-identity when `nameA === nameB`. Every fold `0 .. folds - 1` must hold the
 * same number of pairs of each kind. {@linkcode parsePairs} reads the result back.
 *
 * @param pairs The pairs (for example the `pairs` of a parsed file).
 * @returns The file text, ending with a newline.
 * @throws {RangeError} On unbalanced or missing folds, bad names or bad indices.
 *
 * @example Two folds of one pair of each kind
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPairs } from "./pairs.ts";
 * const text = formatPairs([
 *   { nameA: "Ada", indexA: 1, nameB: "Bob", indexB: 2, fold: 0 },
 *   { nameA: "Ada", indexA: 1, nameB: "Ada", indexB: 2, fold: 0 },
 *   { nameA: "Bob", indexA: 1, nameB: "Bob", indexB: 2, fold: 1 },
 *   { nameA: "Bob", indexA: 3, nameB: "Ada", indexB: 2, fold: 1 },
 * ]);
 * assert.equal(text, "2 1\nAda 1 2\nAda 1 Bob 2\nBob 1 2\nBob 3 Ada 2\n");
 * ```
 */
export function formatPairs(pairs: readonly PairSpec[]): string {
  const folds: { same: string[]; diff: string[] }[] = [];
  for (const [i, p] of pairs.entries()) {
    for (const [name, index] of [[p.nameA, p.indexA], [p.nameB, p.indexB]] as const) {
      if (typeof name !== "string" || !/^\S+$/.test(name)) {
        throw new RangeError(`Pair ${i} has name ${JSON.stringify(name)}, expected no whitespace`);
      }
      if (!Number.isSafeInteger(index) || index < 1) {
        throw new RangeError(`Pair ${i} has image index ${index}, expected a positive integer`);
      }
    }
    if (!Number.isSafeInteger(p.fold) || p.fold < 0) {
      throw new RangeError(`Pair ${i} has fold ${p.fold}, expected a non-negative integer`);
    }
    while (folds.length <= p.fold) folds.push({ same: [], diff: [] });
    if (p.nameA === p.nameB) folds[p.fold].same.push(`${p.nameA} ${p.indexA} ${p.indexB}`);
    else folds[p.fold].diff.push(`${p.nameA} ${p.indexA} ${p.nameB} ${p.indexB}`);
  }
  if (folds.length === 0) throw new RangeError("Cannot format 0 pairs, expected at least one fold");
  const n = folds[0].same.length;
  for (const [f, { same, diff }] of folds.entries()) {
    if (same.length !== n || diff.length !== n || n === 0) {
      throw new RangeError(
        `Fold ${f} has ${same.length} same and ${diff.length} different pairs, expected ` +
          `${n === 0 ? "at least one of each" : `${n} of each (as fold 0)`}`,
      );
    }
  }
  const lines = [`${folds.length} ${n}`];
  for (const { same, diff } of folds) lines.push(...same, ...diff);
  return lines.join("\n") + "\n";
}
