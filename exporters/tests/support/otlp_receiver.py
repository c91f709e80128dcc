#!/usr/bin/env python3
"""A small, real OTLP trace receiver for the exporters' integration tests.

Why it exists: the exporters must be tested against an independent
implementation of OTLP, not against a server written in the same Rust code
base, which would share any misunderstanding of the protocol. This receiver is
built only on the official protobuf definitions (the `opentelemetry-proto`
package) plus grpcio and the standard library, so what it accepts is what the
OpenTelemetry project defines.

It serves OTLP/HTTP (`POST /v1/traces`, binary protobuf) and/or OTLP/gRPC
(`TraceService/Export`) on 127.0.0.1, optionally over TLS or mutual TLS, and
appends every span it accepts to a JSON-lines file that a test can read, each with
the headers (or gRPC metadata) of the request that carried it.

    python3 otlp_receiver.py --out spans.jsonl --http-port 0 --grpc-port 0 \
        [--tls-cert server.pem --tls-key server.key] [--client-ca ca.pem] \
        [--mode ok|hang|error|reject]

After binding it prints one line, `listening http=<port|-> grpc=<port|->`,
and then runs until SIGTERM or SIGINT.

Modes: `ok` accepts and records spans; `error` answers HTTP 503 / gRPC
UNAVAILABLE and records nothing; `hang` reads the request and never answers
(until the receiver is stopped) and records nothing; `reject` answers a partial
success that rejects every span of the request, and records nothing. Every request is logged to
stderr in all modes.
"""

import argparse
import gzip
import json
import signal
import ssl
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

HOST = "127.0.0.1"
PROTOBUF = "application/x-protobuf"
STOP = threading.Event()  # set on SIGTERM/SIGINT; also releases hanging handlers


def log(msg):
    print(f"otlp_receiver: {msg}", file=sys.stderr, flush=True)


def any_value(v):
    """An OTLP AnyValue as plain JSON."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)  # string_value, bool_value, int_value, double_value


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


class SpanLog:
    """Appends one JSON object per span to the output file, flushing each line."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def record(self, transport, request, headers):
        """`headers`: the export request's HTTP headers or gRPC metadata, kept with
        each of its spans, names in lower case."""
        headers = {k.lower(): v for k, v in headers}
        lines = []
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    lines.append(json.dumps({
                        "transport": transport,
                        "headers": headers,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "attributes": attributes(span.attributes),
                        "resource": resource,
                        "scope": ss.scope.name,
                        "status": {"code": span.status.code, "message": span.status.message},
                        "links": [
                            {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
                            for link in span.links
                        ],
                        "events": [event.name for event in span.events],
                    }))
        with self._lock:
            for line in lines:
                self._file.write(line + "\n")
                self._file.flush()
        return len(lines)


def rejection(request):
    """A partial success that rejects every span of `request`."""
    n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    return trace_service_pb2.ExportTraceServiceResponse(
        partial_success=trace_service_pb2.ExportTracePartialSuccess(
            rejected_spans=n, error_message="rejected (--mode reject)"))


def make_http_server(port, mode, spans, tls):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, code, body=b"", content_type=PROTOBUF):
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = self.headers.get("Content-Length")
            if length is None:
                self.close_connection = True
                return self.reply(411, b"Content-Length required", "text/plain")
            body = self.rfile.read(int(length))
            log(f"http: POST {self.path} ({len(body)} bytes), mode={mode}")
            if self.path != "/v1/traces":
                return self.reply(404, b"not found", "text/plain")
            if self.headers.get("Content-Type", "").split(";")[0].strip() != PROTOBUF:
                return self.reply(415, b"only application/x-protobuf", "text/plain")
            if mode == "hang":
                STOP.wait()
                self.close_connection = True
                return
            if mode == "error":
                return self.reply(503, b"unavailable (--mode error)", "text/plain")
            request = trace_service_pb2.ExportTraceServiceRequest()
            try:
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                request.ParseFromString(body)
            except (DecodeError, OSError, EOFError) as e:
                return self.reply(400, f"bad request: {e}".encode(), "text/plain")
            if mode == "reject":
                return self.reply(200, rejection(request).SerializeToString())
            spans.record("http", request, self.headers.items())
            self.reply(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

        def log_message(self, fmt, *args):
            log("http: " + fmt % args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def finish_request(self, request, client_address):
            # The TLS handshake runs here, in the connection's own thread, so a
            # slow or failing client cannot stall the accept loop.
            if tls is not None:
                try:
                    request.settimeout(10)
                    request = tls.wrap_socket(request, server_side=True)
                    request.settimeout(None)
                except (ssl.SSLError, OSError) as e:
                    log(f"http: TLS handshake with {client_address} failed: {e}")
                    request.close()
                    return
            super().finish_request(request, client_address)

    return Server((HOST, port), Handler)


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, mode, spans):
        self.mode, self.spans = mode, spans

    def Export(self, request, context):
        log(f"grpc: Export ({request.ByteSize()} bytes), mode={self.mode}")
        if self.mode == "hang":
            STOP.wait()
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver shutting down")
        if self.mode == "error":
            context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable (--mode error)")
        if self.mode == "reject":
            return rejection(request)
        self.spans.record("grpc", request, context.invocation_metadata())
        return trace_service_pb2.ExportTraceServiceResponse()


def make_grpc_server(port, mode, spans, cert, key, client_ca):
    # grpc turns SO_REUSEPORT on by default, which would let a second receiver
    # share a busy port silently; a busy port must be an error, as for HTTP.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.so_reuseport", 0)])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(mode, spans), server)
    address = f"{HOST}:{port}"
    if cert:
        creds = grpc.ssl_server_credentials(
            [(read(key), read(cert))],
            root_certificates=read(client_ca) if client_ca else None,
            require_client_auth=bool(client_ca),
        )
        bound = server.add_secure_port(address, creds)
    else:
        bound = server.add_insecure_port(address)
    return server, bound


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="JSON-lines file that spans are appended to")
    p.add_argument("--http-port", type=int, help="serve OTLP/HTTP on this port (0: any free port)")
    p.add_argument("--grpc-port", type=int, help="serve OTLP/gRPC on this port (0: any free port)")
    p.add_argument("--tls-cert", help="server certificate (PEM); enables TLS on both transports")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    p.add_argument("--mode", choices=["ok", "hang", "error", "reject"], default="ok")
    args = p.parse_args()
    if args.http_port is None and args.grpc_port is None:
        p.error("give --http-port and/or --grpc-port")
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        p.error("--client-ca needs --tls-cert and --tls-key")

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    spans = SpanLog(args.out)
    http_server = grpc_server = None
    http_port = grpc_port = "-"

    if args.http_port is not None:
        tls = None
        if args.tls_cert:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(args.tls_cert, args.tls_key)
            if args.client_ca:
                tls.verify_mode = ssl.CERT_REQUIRED
                tls.load_verify_locations(cafile=args.client_ca)
        http_server = make_http_server(args.http_port, args.mode, spans, tls)
        http_port = http_server.server_address[1]
        threading.Thread(target=http_server.serve_forever, daemon=True).start()

    if args.grpc_port is not None:
        grpc_server, grpc_port = make_grpc_server(
            args.grpc_port, args.mode, spans, args.tls_cert, args.tls_key, args.client_ca)
        grpc_server.start()

    print(f"listening http={http_port} grpc={grpc_port}", flush=True)

    while not STOP.wait(0.5):
        pass
    log("stopping")
    if http_server is not None:
        http_server.shutdown()
        http_server.server_close()
    if grpc_server is not None:
        grpc_server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
