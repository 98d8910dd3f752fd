"""An example web tier: it hands slow work to the worker tier by sending the body of each POST to the worker queue.

The AWS SDK finds the queue service from AWS_ENDPOINT_URL_SQS alone (boto3 >= 1.28 reads it), so this code runs
unchanged against Amazon SQS when the variable is unset. Credentials and region come from the usual AWS variables.
"""

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

sqs = boto3.client("sqs")
QUEUE_NAME = os.environ.get("QUEUE_NAME", "work")


class Web(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        try:
            queue_url = sqs.get_queue_url(QueueName=QUEUE_NAME)["QueueUrl"]
            answer, status = sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"], 202
        except Exception as error:  # e.g. the queue does not exist yet: sqsd creates it when it starts
            answer, status = str(error), 503
        self.send_response(status)
        self.end_headers()
        self.wfile.write(f"{answer}\n".encode())


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # Python ignores SIGTERM as a container's PID 1
host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8000"))
server = ThreadingHTTPServer((host, port), Web)
print(f"web tier listening on http://{host}:{port}", flush=True)
server.serve_forever()
