import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { GraftError, atomicWriteFile, describeSystemError } from '@graft/core';
import { TRAIN_ERROR_CODES } from './error-codes.ts';

/**
 * One file holding a JSON header and raw little-endian tensor data, so a checkpoint is
 * replaced by a single rename: a crash leaves either the old checkpoint or the new one.
 *
 *   'GRAFTCKP' | u32 header length | header JSON | zero padding to 8 | tensor bytes
 */
const MAGIC = 'GRAFTCKP';
const FORMAT = 1;

export interface CheckpointTensor {
  name: string;
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface Checkpoint<State> {
  /** Identifies the run (params and inputs); a checkpoint of another run is ignored. */
  fingerprint: string;
  state: State;
  tensors: CheckpointTensor[];
}

interface Header<State> {
  format: number;
  fingerprint: string;
  state: State;
  tensors: Array<{ name: string; dtype: 'float32' | 'int32'; shape: number[]; offset: number; byteLength: number }>;
  dataBytes: number;
  dataSha256: string;
}

function checkpointError(path: string, what: string, cause?: unknown): GraftError {
  return new GraftError(TRAIN_ERROR_CODES.checkpointInvalid, `checkpoint ${path} ${what}`, cause === undefined ? {} : { cause });
}

export async function writeCheckpoint<State>(path: string, checkpoint: Checkpoint<State>): Promise<void> {
  let offset = 0;
  const specs: Header<State>['tensors'] = [];
  for (const t of checkpoint.tensors) {
    specs.push({ name: t.name, dtype: t.dtype, shape: t.shape, offset, byteLength: t.data.byteLength });
    offset += t.data.byteLength;
  }
  const data = Buffer.alloc(offset);
  for (const [i, t] of checkpoint.tensors.entries()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(data, specs[i]!.offset);
  }
  const header: Header<State> = {
    format: FORMAT,
    fingerprint: checkpoint.fingerprint,
    state: checkpoint.state,
    tensors: specs,
    dataBytes: data.byteLength,
    dataSha256: createHash('sha256').update(data).digest('hex'),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(12);
  prefix.write(MAGIC, 0, 'ascii');
  prefix.writeUInt32LE(headerBytes.byteLength, 8);
  const padding = Buffer.alloc((8 - ((12 + headerBytes.byteLength) % 8)) % 8);

  try {
    // Same durability as every other graft write: temp file, fsync, rename, fsync the directory.
    await atomicWriteFile(path, [prefix, headerBytes, padding, data]);
  } catch (error) {
    throw new GraftError(TRAIN_ERROR_CODES.checkpointWriteFailed, `could not write checkpoint: ${describeSystemError(error, path)}`, { cause: error });
  }
}

/**
 * The checkpoint at `path`, or null if there is none. A damaged or truncated file is a
 * CHECKPOINT_INVALID error (callers log it and start over rather than trust it).
 */
export async function readCheckpoint<State>(path: string): Promise<Checkpoint<State> | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw checkpointError(path, `cannot be read: ${describeSystemError(error, path)}`, error);
  }
  if (bytes.byteLength < 12 || bytes.toString('ascii', 0, 8) !== MAGIC) throw checkpointError(path, 'is not a graft checkpoint');
  const headerLength = bytes.readUInt32LE(8);
  if (12 + headerLength > bytes.byteLength) throw checkpointError(path, 'is truncated (header)');
  let header: Header<State>;
  try {
    header = JSON.parse(bytes.toString('utf8', 12, 12 + headerLength)) as Header<State>;
  } catch (error) {
    throw checkpointError(path, 'has an unreadable header', error);
  }
  if (header.format !== FORMAT) throw checkpointError(path, `has format ${header.format}, expected ${FORMAT}`);
  const dataStart = 12 + headerLength + ((8 - ((12 + headerLength) % 8)) % 8);
  if (bytes.byteLength !== dataStart + header.dataBytes) throw checkpointError(path, 'is truncated (data)');
  // Copy into an aligned buffer: typed-array views need 4-byte alignment.
  const data = new Uint8Array(header.dataBytes);
  data.set(bytes.subarray(dataStart));
  if (createHash('sha256').update(data).digest('hex') !== header.dataSha256) throw checkpointError(path, 'fails its checksum');
  const tensors = header.tensors.map((spec): CheckpointTensor => {
    const slice = data.buffer.slice(spec.offset, spec.offset + spec.byteLength);
    const values = spec.dtype === 'int32' ? new Int32Array(slice) : new Float32Array(slice);
    const expected = spec.shape.reduce((a, b) => a * b, 1);
    if (values.length !== expected) throw checkpointError(path, `has ${values.length} values for '${spec.name}' of shape [${spec.shape}]`);
    return { name: spec.name, dtype: spec.dtype, shape: spec.shape, data: values };
  });
  return { fingerprint: header.fingerprint, state: header.state, tensors };
}
