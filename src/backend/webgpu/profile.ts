/**
 * Per-kernel GPU times from `timestamp-query` (`COSGRAD_PROFILE=1`): each dispatch of a run gets
 * its own compute pass with timestamps; after the run's single submit, the times are read back
 * asynchronously and printed, one line per kernel, without making the run wait.
 *
 * @module
 */

/** Collects the timestamps of one run. */
export class RunProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private readonly readBuffer: GPUBuffer;
  /** Prepares timestamps for `count` dispatches on `device`. */
  constructor(private readonly device: GPUDevice, private readonly count: number) {
    this.querySet = device.createQuerySet({ type: "timestamp", count: 2 * count });
    const bytes = 16 * count;
    this.resolveBuffer = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.readBuffer = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }
  /** The timestamp writes of dispatch `i`'s pass. */
  writes(i: number): GPUComputePassTimestampWrites {
    return {
      querySet: this.querySet,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    };
  }
  /** Records the copy of the timestamps (before the encoder finishes). */
  resolve(encoder: GPUCommandEncoder): void {
    encoder.resolveQuerySet(this.querySet, 0, 2 * this.count, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, this.readBuffer, 0, 16 * this.count);
  }
  /** After the submit: prints `name  ms` per dispatch when the times arrive. */
  report(names: readonly string[], print: (line: string) => void = console.log): Promise<void> {
    return this.readBuffer.mapAsync(GPUMapMode.READ).then(() => {
      const t = new BigInt64Array(this.readBuffer.getMappedRange().slice(0));
      let total = 0;
      const width = Math.max(...names.map((n) => n.length));
      names.forEach((name, i) => {
        const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
        total += ms;
        print(`[cosgrad profile] ${name.padEnd(width)}  ${ms.toFixed(3)} ms`);
      });
      print(
        `[cosgrad profile] ${"total".padEnd(width)}  ${
          total.toFixed(3)
        } ms (${names.length} kernels)`,
      );
      this.readBuffer.unmap();
    }).catch((e) => {
      print(`[cosgrad profile] timestamps unavailable: ${e instanceof Error ? e.message : e}`);
    }).finally(() => {
      this.readBuffer.destroy();
      this.resolveBuffer.destroy();
      this.querySet.destroy();
    });
  }
}
