/**
 * Datasets: the embedded procedural-faces dataset (generated in code), image decoding and
 * preprocessing, image folders, LFW `pairs.txt`, and insightface's RecordIO and verification
 * `.bin` files. File access uses Deno's APIs, so this module is a subpath of its own
 * (`@cosgrad/cosgrad/data`), outside the browser-safe root.
 *
 * @example
 * ```ts
 * import { syntheticFaces } from "./mod.ts";
 * const faces = syntheticFaces({ identities: 4, imagesPerIdentity: 2, size: 32 });
 * faces.image(0, 1).length; // 3 * 32 * 32
 * ```
 *
 * @module
 */
export { syntheticFaces, syntheticPairs, TEST_IDENTITY_OFFSET, toRgba8 } from "./synthetic.ts";
export type {
  BatchOptions,
  FacePair,
  FaceRef,
  ImageOptions,
  SyntheticFaces,
  SyntheticFacesOptions,
  SyntheticPairs,
  SyntheticPairsOptions,
} from "./synthetic.ts";
export { centerCrop, decodeImage, ImageDecodeError, resizeBilinear, toCHW } from "./image.ts";
export type { RgbImage, ToCHWOptions } from "./image.ts";
export { loadImageFolder, scanImageFolder } from "./image_folder.ts";
export type {
  IgnoredPath,
  ImageFolderData,
  ImageFolderEntry,
  ImageFolderIndex,
  LoadImageFolderOptions,
  SkippedImage,
} from "./image_folder.ts";
export { formatPairs, lfwImagePath, parsePairs } from "./pairs.ts";
export type { LfwPair, PairsFile, PairSpec, ParsePairsOptions } from "./pairs.ts";
export { openRecordIO, parseIdx, parseRecord, RECORDIO_MAGIC, unframeRecord } from "./recordio.ts";
export type {
  IRRecord,
  OpenRecordIOOptions,
  RecordIODataset,
  RecordIOImage,
  SourceOptions,
} from "./recordio.ts";
export { parsePickle, parseVerifyBin, readVerifyBin } from "./verify_bin.ts";
export type { PickleOptions, PickleValue, VerifyBin } from "./verify_bin.ts";
export {
  batchSampler,
  imageFolderDataset,
  prepareImage,
  recordIODataset,
  syntheticDataset,
} from "./dataset.ts";
export type { BatchSamplerOptions, ImageDataset } from "./dataset.ts";
