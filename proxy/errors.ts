/**
 * Typed errors for the proxy's HTTP front end. One table, stable codes: callers (access log,
 * metrics, tests) branch on `err.code`, never on message text. `status` is what we answer with
 * before closing the connection (the codec never keeps a connection after a framing error).
 */

/** Every HTTP/1.1 request-parse failure: code -> [status, default message]. */
export const HTTP_PARSE_ERRORS = {
  L7G_ERR_BAD_REQUEST_LINE: [400, 'malformed request-line'],
  L7G_ERR_BAD_METHOD: [400, 'method is not an RFC 9110 token'],
  L7G_ERR_BAD_TARGET: [400, 'request-target contains forbidden characters'],
  L7G_ERR_URI_TOO_LONG: [414, 'request-target exceeds the configured limit'],
  L7G_ERR_BAD_VERSION: [400, 'malformed HTTP-version'],
  L7G_ERR_VERSION_NOT_SUPPORTED: [505, 'only HTTP/1.0 and HTTP/1.1 are supported'],
  L7G_ERR_HTTP2_PREFACE: [505, 'HTTP/2 connection preface on an HTTP/1.1 listener'],
  L7G_ERR_CONNECT_UNSUPPORTED: [501, 'CONNECT tunnels are not supported'],
  L7G_ERR_BARE_LF: [400, 'line terminated by LF without CR'],
  L7G_ERR_BARE_CR: [400, 'CR not followed by LF'],
  L7G_ERR_OBS_FOLD: [400, 'obsolete line folding in a header field'],
  L7G_ERR_BAD_HEADER_NAME: [400, 'header field name is not a token'],
  L7G_ERR_SPACE_BEFORE_COLON: [400, 'whitespace between header field name and colon'],
  L7G_ERR_BAD_HEADER_VALUE: [400, 'header field value contains a control character'],
  L7G_ERR_HEADERS_TOO_LARGE: [431, 'header section exceeds the configured byte limit'],
  L7G_ERR_TOO_MANY_HEADERS: [431, 'header section exceeds the configured field count'],
  L7G_ERR_MISSING_HOST: [400, 'HTTP/1.1 request without a Host header'],
  L7G_ERR_DUPLICATE_HOST: [400, 'more than one Host header'],
  L7G_ERR_BAD_HOST: [400, 'Host header value is not a valid authority'],
  L7G_ERR_BAD_CONTENT_LENGTH: [400, 'Content-Length is not a non-negative decimal integer'],
  L7G_ERR_CONFLICTING_CONTENT_LENGTH: [400, 'multiple differing Content-Length values'],
  L7G_ERR_BODY_TOO_LARGE: [413, 'request body exceeds the configured limit'],
  L7G_ERR_TE_AND_CL: [400, 'both Transfer-Encoding and Content-Length'],
  L7G_ERR_TE_IN_HTTP10: [400, 'Transfer-Encoding in an HTTP/1.0 request'],
  L7G_ERR_CHUNKED_NOT_FINAL: [400, 'chunked is not the final transfer coding'],
  L7G_ERR_UNSUPPORTED_TE: [501, 'unsupported transfer coding'],
  L7G_ERR_BAD_CHUNK_SIZE: [400, 'malformed chunk-size line'],
  L7G_ERR_BAD_CHUNK_EXT: [400, 'malformed chunk extension'],
  L7G_ERR_BAD_CHUNK_END: [400, 'chunk data not followed by CRLF'],
  L7G_ERR_CHUNK_EXT_TOO_LARGE: [413, 'chunk extensions exceed the configured limit'],
  L7G_ERR_TRAILERS_TOO_LARGE: [431, 'trailer section exceeds the configured limit'],
  // Response side (response-parser.ts): the pod's answer, which the client gets as a 502.
  L7G_ERR_BAD_STATUS_LINE: [502, 'malformed status-line'],
  L7G_ERR_UNEXPECTED_RESPONSE: [502, 'response bytes with no request waiting for them'],
  L7G_ERR_UNEXPECTED_UPGRADE: [502, '101 Switching Protocols to a request that asked for no upgrade'],
  L7G_ERR_INCOMPLETE_RESPONSE: [502, 'connection closed before the response was complete'],
} as const satisfies Record<string, readonly [number, string]>;

export type HttpParseErrorCode = keyof typeof HTTP_PARSE_ERRORS;
export type HttpErrorStatus = (typeof HTTP_PARSE_ERRORS)[HttpParseErrorCode][0];

/** Base class for every error the proxy raises on purpose. */
export class ProxyError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The request bytes violate RFC 9112 or a configured limit; answer `status` and close. */
export class HttpParseError extends ProxyError {
  declare readonly code: HttpParseErrorCode;
  readonly status: HttpErrorStatus;
  constructor(code: HttpParseErrorCode, detail?: string) {
    const [status, message] = HTTP_PARSE_ERRORS[code];
    super(code, detail === undefined ? message : `${message}: ${detail}`);
    this.status = status;
  }
}

/** Connection-level failures of the front end (not parse errors): code -> default message. */
export const FRONT_END_ERRORS = {
  L7G_ERR_HEADERS_TIMEOUT: 'request head not received within headersTimeoutMs',
  L7G_ERR_REQUEST_TIMEOUT: 'exchange not completed within requestTimeoutMs',
  L7G_ERR_CLIENT_BODY_TIMEOUT: 'no request body byte from the client within clientBodyTimeoutMs',
  L7G_ERR_SEND_TIMEOUT: 'client did not read the response within sendTimeoutMs',
  L7G_ERR_CLIENT_ABORTED: 'client connection closed before the exchange completed',
  L7G_ERR_SOCKET: 'client socket error',
  L7G_ERR_RESPONSE_STATE: 'response method called in the wrong state',
  L7G_ERR_INVALID_RESPONSE_HEADER: 'response header name, value or reason contains forbidden characters',
  L7G_ERR_RESPONSE_LENGTH_MISMATCH: 'response body length differs from its Content-Length',
  L7G_ERR_HANDLER_THREW: 'onRequest threw synchronously',
} as const;

export type FrontEndErrorCode = keyof typeof FRONT_END_ERRORS;

export class FrontEndError extends ProxyError {
  declare readonly code: FrontEndErrorCode;
  constructor(code: FrontEndErrorCode, options?: { cause?: unknown; detail?: string }) {
    const message = FRONT_END_ERRORS[code];
    super(code, options?.detail === undefined ? message : `${message}: ${options.detail}`);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** Failures of our own upstream client (proxy/upstream/http1-client.ts): code -> default message. */
export const UPSTREAM_ERRORS = {
  L7G_ERR_UPSTREAM_CONNECT_TIMEOUT: 'no connection to the pod within connectTimeout',
  L7G_ERR_UPSTREAM_HEADERS_TIMEOUT: 'no response head from the pod within the response timeout',
  L7G_ERR_UPSTREAM_BODY_TIMEOUT: 'no response body byte from the pod within the body timeout',
  L7G_ERR_UPSTREAM_CLOSED: 'the pod closed the connection before the response was complete',
  L7G_ERR_UPSTREAM_BAD_RESPONSE: 'the response violates RFC 9112',
  L7G_ERR_UPSTREAM_BAD_REQUEST_HEAD: 'a request header field would break the request head',
  L7G_ERR_UPSTREAM_CLIENT_CLOSED: 'the upstream client is closed',
} as const;

export type UpstreamErrorCode = keyof typeof UPSTREAM_ERRORS;

export class UpstreamError extends ProxyError {
  declare readonly code: UpstreamErrorCode;
  constructor(code: UpstreamErrorCode, options?: { cause?: unknown; detail?: string }) {
    const message = UPSTREAM_ERRORS[code];
    super(code, options?.detail === undefined ? message : `${message}: ${options.detail}`);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
