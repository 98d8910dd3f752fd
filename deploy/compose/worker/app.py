"""An example worker app: conveyor sqsd POSTs it every message of the worker queue, as Elastic Beanstalk's sqsd does.

Answer 2xx when the job is done (sqsd deletes the message); anything else, and the message comes back later, then goes
to the dead-letter queue after MaxRetries. GET answers 200 for the container's health check. Only standard library.
"""

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Worker(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        task = self.headers.get("X-Aws-Sqsd-Taskname")  # set on the messages of cron.yaml's tasks
        job = f"task {task}" if task else f"message {self.headers.get('X-Aws-Sqsd-Msgid')}"
        print(f"POST {self.path} {job}: {body.decode(errors='replace')}", flush=True)
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()


# Python ignores SIGTERM as a container's PID 1: exit on it, so a stop does not wait for the kill.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
# Only sqsd, in this container's network namespace, reaches the app: it listens on loopback, as on EB.
host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
server = ThreadingHTTPServer((host, port), Worker)
print(f"worker app listening on http://{host}:{port}", flush=True)
server.serve_forever()
