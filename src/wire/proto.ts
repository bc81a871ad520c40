import type { MethodDefinition, Server, ServiceDefinition } from '@grpc/grpc-js';
import type { Http2SecureServer, Http2Server, ServerHttp2Session } from 'node:http2';
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { asBuffer } from '../bytes.js';
import { packageRoot } from '../paths.js';

/**
 * The wire's version, checked at hello (a different one is refused, naming both). 2: a collective-key party's own
 * masked gradient is shared without its bytes coming back, a second offer of a held job is refused, and a boosting
 * host may be asked for a node it sums from the tree's root (2026-12-07).
 */
export const PROTOCOL_VERSION = 2;

/**
 * HTTP/2 flow-control window of every fedcredit connection and stream, both ends. Node's default of 64 KiB makes a
 * 262–393 KB ciphertext of a vertical batch wait for 4 to 6 window updates per hop, each a round trip between two
 * busy processes.
 */
export const FLOW_CONTROL_WINDOW_BYTES = 8 * 2 ** 20;

/**
 * Options of every gRPC channel and server. Keepalive on both ends: a peer that vanishes without closing its socket
 * is noticed in ~40 s. The window applies to clients only; servers get theirs from widenServerWindows.
 */
export const CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
} as const;

/**
 * Give every connection a bound server accepts FLOW_CONTROL_WINDOW_BYTES of window, for the connection and for each
 * stream. grpc-js (1.14.7, pinned) has no server option for it, nor a public handle on its HTTP/2 servers: they
 * are reached through the same field as in ServerTransport.guardHandshakes. Call after bindAsync.
 */
export function widenServerWindows(server: Server): void {
  const servers = [...((server as unknown as { http2Servers?: Map<Http2Server | Http2SecureServer, unknown> }).http2Servers?.keys() ?? [])];
  if (servers.length === 0) throw new Error('cannot set the HTTP/2 windows: this grpc-js version does not expose its HTTP/2 servers (fedcredit pins @grpc/grpc-js 1.14.7; reinstall with npm ci)');
  for (const http2Server of servers) {
    (http2Server as Http2Server).on('session', (session: ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(FLOW_CONTROL_WINDOW_BYTES);
        session.settings({ initialWindowSize: FLOW_CONTROL_WINDOW_BYTES });
      } catch {
        // A session torn down as it opened keeps Node's defaults; it carries nothing anyway.
      }
    });
  }
}

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
