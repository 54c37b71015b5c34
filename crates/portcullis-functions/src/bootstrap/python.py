# Portcullis Python bootstrap: runs an unchanged AWS Lambda handler against the Lambda Runtime
# API at AWS_LAMBDA_RUNTIME_API. Standard library only.
import http.client
import importlib
import json
import os
import socket
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
PREFIX = "/2018-06-01/runtime"


_conn = None


def _connection():
    # One kept-alive connection to the Runtime API, without Nagle's delay.
    global _conn
    if _conn is None:
        _conn = http.client.HTTPConnection(API, timeout=None)
        _conn.connect()
        _conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _conn


def request(method, path, body=None, headers=None):
    global _conn
    for attempt in (0, 1):
        try:
            conn = _connection()
            conn.request(method, PREFIX + path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        except (http.client.HTTPException, OSError):
            # The endpoint closed the kept-alive connection: open a new one, once.
            if _conn is not None:
                _conn.close()
            _conn = None
            if attempt == 1:
                raise


def error_body(error_type, error_message, stack=None):
    return json.dumps(
        {"errorMessage": error_message, "errorType": error_type, "stackTrace": stack or []}
    ).encode()


def post_error(path, error_type, message, stack=None):
    request(
        "POST",
        path,
        error_body(error_type, message, stack),
        {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": error_type},
    )


class Context:
    def __init__(self, headers):
        lower = {k.lower(): v for k, v in headers.items()}
        self.aws_request_id = lower.get("lambda-runtime-aws-request-id", "")
        self.invoked_function_arn = lower.get("lambda-runtime-invoked-function-arn", "")
        self._deadline_ms = int(lower.get("lambda-runtime-deadline-ms", "0"))
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        trace = lower.get("lambda-runtime-trace-id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def load_handler():
    spec = os.environ.get("_HANDLER", "")
    module_name, _, func_name = spec.rpartition(".")
    module_name = module_name.replace("/", ".")
    root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:
        return None, ("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (module_name, e))
    except ImportError as e:
        return None, ("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, e))
    except Exception as e:  # noqa: BLE001 - any failure at import is an init error
        traceback.print_exc()
        return None, (type(e).__name__, str(e))
    handler = getattr(module, func_name, None)
    if handler is None:
        return None, (
            "Runtime.HandlerNotFound",
            "Handler '%s' missing on module '%s'" % (func_name, module_name),
        )
    return handler, None


def main():
    handler, failure = load_handler()
    if failure is not None:
        print("[ERROR] %s: %s" % failure, file=sys.stderr, flush=True)
        post_error("/init/error", failure[0], failure[1])
        sys.exit(1)
    while True:
        status, headers, body = request("GET", "/invocation/next")
        if status != 200:
            time.sleep(0.05)
            continue
        context = Context(headers)
        request_id = context.aws_request_id
        try:
            event = json.loads(body) if body else None
            result = handler(event, context)
        except Exception as e:  # noqa: BLE001 - the handler's exception goes to the caller
            stack = traceback.format_exception(type(e), e, e.__traceback__)
            print("".join(stack), file=sys.stderr, end="", flush=True)
            post_error("/invocation/%s/error" % request_id, type(e).__name__, str(e), stack)
            continue
        try:
            payload = json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            message = "Unable to marshal response: %s" % e
            print("[ERROR] Runtime.MarshalError: %s" % message, file=sys.stderr, flush=True)
            post_error("/invocation/%s/error" % request_id, "Runtime.MarshalError", message)
            continue
        request("POST", "/invocation/%s/response" % request_id, payload, {"Content-Type": "application/json"})


if __name__ == "__main__":
    main()
