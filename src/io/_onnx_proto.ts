// ONNX's protobuf schema (the messages of onnx.proto that a model file uses), as a protobufjs
// JSON descriptor, and the codec built from it. Field numbers and types follow onnx.proto (IR
// version 8); names are camelCase, which the wire format never sees. protobufjs is loaded on
// first use, so importing `./io` for checkpoints downloads nothing more.

/** An attribute of a node (`AttributeProto`). */
export interface OnnxAttribute {
  name: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensor;
  g?: unknown;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: OnnxTensor[];
  graphs?: unknown[];
  refAttrName?: string;
}

/** A tensor value (`TensorProto`). */
export interface OnnxTensor {
  dims?: number[];
  dataType?: number;
  name?: string;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  uint64Data?: number[];
  rawData?: Uint8Array;
  dataLocation?: number;
  externalData?: { key: string; value: string }[];
  segment?: unknown;
}

/** A dimension of a value's shape: a number, or a name for a dynamic one. */
export interface OnnxDim {
  dimValue?: number;
  dimParam?: string;
}

/** A graph input or output (`ValueInfoProto`). */
export interface OnnxValueInfo {
  name: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: OnnxDim[] } } };
  docString?: string;
}

/** A node (`NodeProto`). */
export interface OnnxNode {
  input?: string[];
  output?: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute?: OnnxAttribute[];
}

/** A graph (`GraphProto`). */
export interface OnnxGraph {
  node?: OnnxNode[];
  name?: string;
  initializer?: OnnxTensor[];
  sparseInitializer?: unknown[];
  input?: OnnxValueInfo[];
  output?: OnnxValueInfo[];
  valueInfo?: OnnxValueInfo[];
}

/** A model (`ModelProto`). */
export interface OnnxModel {
  irVersion?: number;
  opsetImport?: { domain?: string; version?: number }[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph?: OnnxGraph;
  metadataProps?: { key: string; value: string }[];
  trainingInfo?: unknown[];
  functions?: unknown[];
}

/** `TensorProto.DataType` values this project reads or writes. */
export const DATA_TYPE = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  DOUBLE: 11,
} as const;

/** `AttributeProto.AttributeType` values. */
export const ATTR_TYPE = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

const field = (type: string, id: number, repeated = false) =>
  repeated ? { rule: "repeated", type, id } : { type, id };

const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: {
            name: field("string", 1),
            refAttrName: field("string", 21),
            docString: field("string", 13),
            type: field("int32", 20),
            f: field("float", 2),
            i: field("int64", 3),
            s: field("bytes", 4),
            t: field("TensorProto", 5),
            g: field("GraphProto", 6),
            sparseTensor: field("SparseTensorProto", 22),
            floats: field("float", 7, true),
            ints: field("int64", 8, true),
            strings: field("bytes", 9, true),
            tensors: field("TensorProto", 10, true),
            graphs: field("GraphProto", 11, true),
            sparseTensors: field("SparseTensorProto", 23, true),
          },
        },
        ValueInfoProto: {
          fields: {
            name: field("string", 1),
            type: field("TypeProto", 2),
            docString: field("string", 3),
          },
        },
        NodeProto: {
          fields: {
            input: field("string", 1, true),
            output: field("string", 2, true),
            name: field("string", 3),
            opType: field("string", 4),
            domain: field("string", 7),
            attribute: field("AttributeProto", 5, true),
            docString: field("string", 6),
          },
        },
        ModelProto: {
          fields: {
            irVersion: field("int64", 1),
            opsetImport: field("OperatorSetIdProto", 8, true),
            producerName: field("string", 2),
            producerVersion: field("string", 3),
            domain: field("string", 4),
            modelVersion: field("int64", 5),
            docString: field("string", 6),
            graph: field("GraphProto", 7),
            metadataProps: field("StringStringEntryProto", 14, true),
            trainingInfo: field("bytes", 20, true),
            functions: field("bytes", 25, true),
          },
        },
        StringStringEntryProto: {
          fields: { key: field("string", 1), value: field("string", 2) },
        },
        GraphProto: {
          fields: {
            node: field("NodeProto", 1, true),
            name: field("string", 2),
            initializer: field("TensorProto", 5, true),
            sparseInitializer: field("SparseTensorProto", 15, true),
            docString: field("string", 10),
            input: field("ValueInfoProto", 11, true),
            output: field("ValueInfoProto", 12, true),
            valueInfo: field("ValueInfoProto", 13, true),
          },
        },
        TensorProto: {
          fields: {
            dims: field("int64", 1, true),
            dataType: field("int32", 2),
            segment: field("bytes", 3),
            floatData: field("float", 4, true),
            int32Data: field("int32", 5, true),
            stringData: field("bytes", 6, true),
            int64Data: field("int64", 7, true),
            name: field("string", 8),
            docString: field("string", 12),
            rawData: field("bytes", 9),
            externalData: field("StringStringEntryProto", 13, true),
            dataLocation: field("int32", 14),
            doubleData: field("double", 10, true),
            uint64Data: field("uint64", 11, true),
          },
        },
        SparseTensorProto: {
          fields: {
            values: field("TensorProto", 1),
            indices: field("TensorProto", 2),
            dims: field("int64", 3, true),
          },
        },
        TensorShapeProto: {
          fields: { dim: field("Dimension", 1, true) },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ["dimValue", "dimParam"] } },
              fields: {
                dimValue: field("int64", 1),
                dimParam: field("string", 2),
                denotation: field("string", 3),
              },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ["tensorType", "sequenceType", "mapType"] } },
          fields: {
            tensorType: field("TensorType", 1),
            sequenceType: field("bytes", 4),
            mapType: field("bytes", 5),
            denotation: field("string", 6),
          },
          nested: {
            TensorType: {
              fields: { elemType: field("int32", 1), shape: field("TensorShapeProto", 2) },
            },
          },
        },
        OperatorSetIdProto: {
          fields: { domain: field("string", 1), version: field("int64", 2) },
        },
      },
    },
  },
};

interface ModelType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): unknown;
  fromObject(object: unknown): unknown;
  encode(message: unknown): { finish(): Uint8Array };
}

let modelType: Promise<ModelType> | undefined;

function loadModelType(): Promise<ModelType> {
  modelType ??= import("protobufjs").then((mod) => {
    const pb = (mod.default ?? mod) as unknown as {
      Root: { fromJSON(json: unknown): { lookupType(name: string): ModelType } };
    };
    return pb.Root.fromJSON(SCHEMA).lookupType("onnx.ModelProto");
  });
  return modelType;
}

/** Decodes the bytes of an `.onnx` file (int64 fields become numbers). */
export async function decodeModel(bytes: Uint8Array): Promise<OnnxModel> {
  const type = await loadModelType();
  let message: unknown;
  try {
    message = type.decode(bytes);
  } catch (e) {
    throw new TypeError(
      `Cannot decode ONNX model (${bytes.length} bytes): ${e instanceof Error ? e.message : e}`,
    );
  }
  return type.toObject(message, { longs: Number, arrays: true, defaults: false }) as OnnxModel;
}

/** Encodes a model as the bytes of an `.onnx` file. */
export async function encodeModel(model: OnnxModel): Promise<Uint8Array> {
  const type = await loadModelType();
  return type.encode(type.fromObject(model)).finish();
}
