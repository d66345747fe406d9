// Conversions between ONNX TensorProto values and host arrays, shared by import and export.
import type { DType } from "../ir/dtype.ts";
import { DATA_TYPE, type OnnxTensor } from "./_onnx_proto.ts";

/** A tensor's values on the host, as ONNX stores them (int64 as numbers). */
export interface HostArray {
  /** ONNX element type (`DATA_TYPE`). */
  dataType: number;
  shape: number[];
  values: Float32Array | Float64Array | Int32Array | number[];
}

const TYPE_NAMES: Record<number, string> = {
  0: "UNDEFINED",
  1: "FLOAT",
  2: "UINT8",
  3: "INT8",
  4: "UINT16",
  5: "INT16",
  6: "INT32",
  7: "INT64",
  8: "STRING",
  9: "BOOL",
  10: "FLOAT16",
  11: "DOUBLE",
  12: "UINT32",
  13: "UINT64",
  14: "COMPLEX64",
  15: "COMPLEX128",
  16: "BFLOAT16",
};

/** The name of an ONNX element type (`FLOAT`, `INT64`, ...). */
export function typeName(dataType: number): string {
  return TYPE_NAMES[dataType] ?? `type ${dataType}`;
}

/** The ONNX element type of a cosgrad dtype. */
export function onnxType(dtype: DType): number {
  switch (dtype) {
    case "float32":
      return DATA_TYPE.FLOAT;
    case "float64":
      return DATA_TYPE.DOUBLE;
    case "int32":
      return DATA_TYPE.INT32;
  }
}

/** Reads a TensorProto's values (raw_data or the typed fields), refusing external data. */
export function readTensor(t: OnnxTensor, where: string): HostArray {
  const shape = (t.dims ?? []).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const dataType = t.dataType ?? 0;
  if (t.dataLocation === 1 || (t.externalData?.length ?? 0) > 0) {
    throw new TypeError(
      `${where}: tensor "${t.name}" keeps its data in an external file; ` +
        `save the model with its weights inside the .onnx file`,
    );
  }
  const raw = t.rawData;
  const view = raw && raw.length > 0
    ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
    : undefined;
  const check = (got: number) => {
    if (got !== n) {
      throw new RangeError(
        `${where}: tensor "${t.name}" of shape [${shape}] holds ${got} values, expected ${n}`,
      );
    }
  };
  switch (dataType) {
    case DATA_TYPE.FLOAT: {
      const out = new Float32Array(n);
      if (view) {
        check(view.byteLength / 4);
        for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      } else {
        check((t.floatData ?? []).length);
        out.set(t.floatData ?? []);
      }
      return { dataType, shape, values: out };
    }
    case DATA_TYPE.DOUBLE: {
      const out = new Float64Array(n);
      if (view) {
        check(view.byteLength / 8);
        for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      } else {
        check((t.doubleData ?? []).length);
        out.set(t.doubleData ?? []);
      }
      return { dataType, shape, values: out };
    }
    case DATA_TYPE.INT32: {
      const out = new Int32Array(n);
      if (view) {
        check(view.byteLength / 4);
        for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      } else {
        check((t.int32Data ?? []).length);
        out.set(t.int32Data ?? []);
      }
      return { dataType, shape, values: out };
    }
    case DATA_TYPE.INT64: {
      if (view) {
        check(view.byteLength / 8);
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push(Number(view.getBigInt64(8 * i, true)));
        return { dataType, shape, values: out };
      }
      check((t.int64Data ?? []).length);
      return { dataType, shape, values: (t.int64Data ?? []).map(Number) };
    }
    case DATA_TYPE.BOOL:
    case DATA_TYPE.UINT8:
    case DATA_TYPE.INT8: {
      const out: number[] = [];
      if (raw && raw.length > 0) {
        check(raw.length);
        for (let i = 0; i < n; i++) {
          out.push(dataType === DATA_TYPE.INT8 ? (raw[i] << 24) >> 24 : raw[i]);
        }
      } else {
        check((t.int32Data ?? []).length);
        out.push(...(t.int32Data ?? []));
      }
      return { dataType, shape, values: out };
    }
    default:
      throw new TypeError(
        `${where}: tensor "${t.name}" has element type ${
          typeName(dataType)
        }; supported: FLOAT, DOUBLE, INT32, INT64, BOOL, INT8, UINT8`,
      );
  }
}

/** A TensorProto holding `values` little-endian in raw_data. */
export function writeTensor(
  name: string,
  dataType: number,
  shape: readonly number[],
  values: ArrayLike<number>,
): OnnxTensor {
  const n = values.length;
  let raw: Uint8Array;
  if (dataType === DATA_TYPE.FLOAT) {
    raw = new Uint8Array(Float32Array.from(values).buffer);
  } else if (dataType === DATA_TYPE.DOUBLE) {
    raw = new Uint8Array(Float64Array.from(values).buffer);
  } else if (dataType === DATA_TYPE.INT32) {
    raw = new Uint8Array(Int32Array.from(values).buffer);
  } else if (dataType === DATA_TYPE.INT64) {
    const b = new BigInt64Array(n);
    for (let i = 0; i < n; i++) b[i] = BigInt(values[i]);
    raw = new Uint8Array(b.buffer);
  } else {
    throw new TypeError(`writeTensor: element type ${typeName(dataType)} is not written`);
  }
  return { name, dataType, dims: [...shape], rawData: raw };
}
