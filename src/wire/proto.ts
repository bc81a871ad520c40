import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';

export const PROTOCOL_VERSION = 1;

/** Keepalive on every connection, both ends: a peer that vanishes without closing its socket is noticed in ~40 s. */
export const KEEPALIVE_OPTIONS = {
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 1,
} as const;
const PACKAGE = 'fedcredit.v1';

let root: protobuf.Root | undefined;

/** The parsed proto/ tree. Loaded once per process. */
export function protoRoot(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root();
    for (const file of ['federation.proto', 'ledger.proto']) root.loadSync(join(packageRoot(), 'proto', 'fedcredit', 'v1', file), { keepCase: false });
    root.resolveAll();
  }
  return root;
}

export function messageType(name: string): protobuf.Type {
  return protoRoot().lookupType(`${PACKAGE}.${name}`);
}

const toObjectOptions: protobuf.IConversionOptions = { longs: Number, defaults: true, oneofs: true, arrays: true };

/** Encode a plain object (camelCase fields) as the named message. Unknown or mistyped fields throw. */
export function encodeMessage(name: string, value: object): Uint8Array {
  const type = messageType(name);
  const problem = type.verify(value);
  if (problem) throw new TypeError(`cannot encode ${name}: ${problem}`);
  return type.encode(type.fromObject(value)).finish();
}

/** Decode bytes as the named message into a plain object. Malformed bytes throw. */
export function decodeMessage<T>(name: string, bytes: Uint8Array): T {
  const type = messageType(name);
  return type.toObject(type.decode(bytes), toObjectOptions) as T;
}

/** The same bytes as a Buffer, without a copy. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The gRPC service definition for `Coordinator`, built from the proto with protobufjs (de)serialisers, for
 * grpc-js's Server.addService and makeGenericClientConstructor. A serialiser passes bytes through as they are:
 * the control streams write frames encoded once (encodeFrames).
 */
export function coordinatorServiceDefinition(): ServiceDefinition {
  const service = protoRoot().lookupService(`${PACKAGE}.Coordinator`);
  const definition: Record<string, MethodDefinition<object, object>> = {};
  for (const method of service.methodsArray) {
    method.resolve();
    const requestName = method.resolvedRequestType!.name;
    const responseName = method.resolvedResponseType!.name;
    const name = method.name.charAt(0).toLowerCase() + method.name.slice(1);
    definition[name] = {
      path: `/${PACKAGE}.Coordinator/${method.name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: (value: object) => asBuffer(value instanceof Uint8Array ? value : encodeMessage(requestName, value)),
      requestDeserialize: (bytes: Buffer) => decodeMessage<object>(requestName, bytes),
      responseSerialize: (value: object) => asBuffer(value instanceof Uint8Array ? value : encodeMessage(responseName, value)),
      responseDeserialize: (bytes: Buffer) => decodeMessage<object>(responseName, bytes),
    };
  }
  return definition;
}
