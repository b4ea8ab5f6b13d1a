import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { DiscoveryRequest, DiscoveryServiceService, ResourceKey } from '@sluice/proto';
import type { ServedResource } from './translator-port.js';

/** A DiscoveryResponse whose resources are already encoded (shared by every stream). */
export interface OutgoingResponse {
  readonly nonce: string;
  readonly revision: number;
  readonly snapshotVersion: string;
  readonly resources: readonly ServedResource[];
  readonly removed: readonly ResourceKey[];
}

/** A DiscoveryRequest plus the raw `node.protocol_version` number (the enum maps unknown ones to UNRECOGNIZED). */
export interface IncomingRequest {
  readonly request: DiscoveryRequest;
  readonly protocolVersion: number;
}

// Field tags of sluice.v1.DiscoveryResponse (discovery.proto): (field << 3) | wire type.
const NONCE = (1 << 3) | WireType.LengthDelimited;
const REVISION = (2 << 3) | WireType.Varint;
const SNAPSHOT_VERSION = (3 << 3) | WireType.LengthDelimited;
const RESOURCES = (4 << 3) | WireType.LengthDelimited;
const REMOVED = (5 << 3) | WireType.LengthDelimited;

/**
 * Serializes a response from the resources' pre-encoded bytes: an embedded message is its
 * tag, its length and its bytes, so a resource is never encoded again per stream. Byte-for-byte
 * what `DiscoveryResponse.encode` would produce for the decoded resources.
 */
export function encodeResponse(response: OutgoingResponse): Buffer {
  const writer = new BinaryWriter();
  if (response.nonce !== '') writer.uint32(NONCE).string(response.nonce);
  if (response.revision !== 0) writer.uint32(REVISION).int64(response.revision);
  if (response.snapshotVersion !== '') writer.uint32(SNAPSHOT_VERSION).string(response.snapshotVersion);
  for (const resource of response.resources) writer.uint32(RESOURCES).bytes(resource.encoded);
  for (const key of response.removed) ResourceKey.encode(key, writer.uint32(REMOVED).fork()).join();
  return Buffer.from(writer.finish());
}

/** Decodes a request and reads `node.protocol_version` as a number, so a refusal can name it. */
export function decodeRequest(bytes: Buffer): IncomingRequest {
  const request = DiscoveryRequest.decode(bytes);
  return { request, protocolVersion: request.node ? rawProtocolVersion(bytes) : 0 };
}

/** `node.protocol_version` (field 1, then field 5) as a number; 0 when absent. Also fits AgentReport. */
export function rawProtocolVersion(bytes: Uint8Array): number {
  const reader = new BinaryReader(bytes);
  let version = 0;
  while (reader.pos < reader.len) {
    const [field, type] = reader.tag();
    if (field === 1 && type === WireType.LengthDelimited) {
      const node = new BinaryReader(reader.bytes());
      while (node.pos < node.len) {
        const [nodeField, nodeType] = node.tag();
        if (nodeField === 5 && nodeType === WireType.Varint) version = node.int32();
        else node.skip(nodeType);
      }
    } else {
      reader.skip(type);
    }
  }
  return version;
}

/** DiscoveryService with our own (de)serializers; same path and streaming shape as the generated one. */
export const DISCOVERY_SERVICE = {
  stream: {
    ...DiscoveryServiceService.stream,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
  },
} as const;
