/**
 * Reading sockets below Node's stream layer. A socket's `onread` option (net.connect) has libuv
 * read straight into a buffer we own and hands us the byte count: no ArrayBuffer is allocated and
 * freed per read, and no Readable push/emit runs. Measured on the bench's allowed scenario, those
 * two were most of the user time Node itself spent per request (docs/benchmarks.md).
 *
 * Every socket reads into one buffer. That is safe because a read is handed to its owner before
 * libuv starts the next one (all reads run on the event loop's thread, one callback at a time), so
 * an owner may parse the bytes in place but must copy whatever it keeps past its callback.
 *
 * Except while a body streams through: then every byte read is kept (handed to the other side),
 * and a copy of each would cost more than the allocation it saves (1 MiB uploads took twice the
 * CPU). Node asks for the next read's buffer after each read (`onread.buffer` as a function), so a
 * socket whose owner says it is streaming (`privateReads`) reads into a buffer of its own, which
 * the owner keeps without copying, as Node's own stream reads do. `isShared(buf)` tells them apart.
 */
import net from 'node:net';

const READ_SIZE = 64 * 1024;
export const READ_BUFFER: Buffer = Buffer.allocUnsafe(READ_SIZE);

/** Called with the socket as `this` (Node's onStreamRead); the bytes are buf[0, nread). */
export type SharedReadCallback = (this: net.Socket, nread: number, buf: Buffer) => boolean;

/** Whether `buf` (a read's buffer) is the shared one: its bytes must be copied to be kept. */
export function isShared(buf: Buffer): boolean {
  return buf === READ_BUFFER;
}

/**
 * The `onread` option for net.connect / new net.Socket (its type omits the `this` Node passes).
 * `privateReads`, asked before each read: the next read's bytes will all be kept.
 */
export function sharedReads(callback: SharedReadCallback, privateReads: () => boolean): net.OnReadOpts {
  return {
    buffer: () => (privateReads() ? Buffer.allocUnsafe(READ_SIZE) : READ_BUFFER),
    callback: callback as (nread: number, buf: Uint8Array) => boolean,
  };
}

/** Bytes of their own for a view of a read: from Buffer's pool when small, else without zero-filling. */
export function copyOut(view: Buffer): Buffer {
  if (view.length < 4096) return Buffer.from(view);
  const out = Buffer.allocUnsafe(view.length);
  view.copy(out);
  return out;
}

/** What net.Server's accepted sockets carry and the public types do not. */
interface AcceptedSocket extends net.Socket {
  _handle: { reading: boolean; readStop(): number } | null;
  _server: net.Server | null;
  server: net.Server | null;
}

/**
 * An accepted socket re-wrapped to read into READ_BUFFER: net.Server offers no `onread`, so its
 * handle moves to a new net.Socket created with one (how Node wraps a handle itself: net.js
 * onconnection). Called in the server's 'connection' listener, before any read was delivered.
 * Returns the socket as it is when its handle cannot move (destroyed, already read from, not TCP).
 */
export function adoptWithSharedReads(socket: net.Socket, callback: SharedReadCallback, privateReads: (socket: net.Socket) => boolean): net.Socket {
  if (socket.bytesRead > 0) return socket;
  // Node asks for the first buffer while constructing the socket, before it is known here: shared.
  const moved: { socket?: net.Socket | undefined } = {};
  moved.socket = moveHandle(socket, sharedReads(callback, () => moved.socket !== undefined && privateReads(moved.socket)));
  return moved.socket ?? socket;
}

/**
 * For a socket that keeps reading into the shared buffer but has a stream consumer now (an
 * upgrade's tunnel pipes it; the handle cannot go back to plain reads, Node has no call that
 * removes a user buffer): the bytes are copied and pushed into the socket's own Readable, so
 * 'data', pipe() and backpressure work as on any socket (false stops reading until it is read).
 */
export function pushToStream(socket: net.Socket, nread: number, buf: Buffer): boolean {
  return socket.push(copyOut(buf.subarray(0, nread)));
}

/**
 * The handle moves to a new net.Socket; the old object is left without handle or server and is
 * never used again. Only between reads and with nothing buffered in the old object's Readable.
 */
function moveHandle(socket: net.Socket, onread: net.OnReadOpts): net.Socket | undefined {
  const old = socket as AcceptedSocket;
  const handle = old._handle;
  if (handle === null || typeof handle.readStop !== 'function' || socket.destroyed || socket.readableLength > 0) return undefined;
  if (handle.readStop() !== 0) return undefined;
  handle.reading = false;
  const server = old._server;
  old._handle = null;
  old._server = null;
  old.server = null;
  const moved = new net.Socket({
    handle,
    allowHalfOpen: socket.allowHalfOpen,
    readable: true,
    writable: true,
    onread,
  } as net.SocketConstructorOpts & { handle: object }) as AcceptedSocket;
  // net.Server counts its connections down in the socket's destroy: the new object does that now.
  moved._server = server;
  moved.server = server;
  return moved;
}
