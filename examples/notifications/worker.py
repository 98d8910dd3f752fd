"""The worker: renders an email from a message and sends it over SMTP.

A message is JSON: {"to": "ada@example.test", "template": "welcome", "name": "Ada"}. Unknown
templates are answered 400 (they end in the dead-letter queue after MaxRetries); an SMTP server that
is down is answered 503 with Retry-After, so the message comes back when it is likely up again.
"""

import asyncio
import json
import os
import smtplib
from email.message import EmailMessage
from string import Template

from aiohttp import web

TEMPLATES = {
    "welcome": ("Welcome, $name", "Hello $name,\n\nyour account is ready.\n"),
    "receipt": ("Your receipt $number", "Hello $name,\n\nthank you for order $number.\n"),
    "digest": ("Your daily digest", "Hello,\n\nhere is what happened today ($scheduled).\n"),
}


def render(task: dict) -> EmailMessage:
    subject, body = TEMPLATES[task["template"]]
    fields = {"scheduled": "", **task}
    message = EmailMessage()
    message["From"] = os.environ["MAIL_FROM"]
    message["To"] = task["to"]
    message["Subject"] = Template(subject).safe_substitute(fields)
    message.set_content(Template(body).safe_substitute(fields))
    return message


def deliver(message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=10) as smtp:
        smtp.send_message(message)


async def notify(request: web.Request) -> web.Response:
    if request.headers.get("X-Aws-Sqsd-Taskname") == "digest":
        task = {
            "to": "team@example.test",
            "template": "digest",
            "scheduled": request.headers["X-Aws-Sqsd-Scheduled-At"],
        }
    else:
        task = json.loads(await request.read())
    if task.get("template") not in TEMPLATES or "to" not in task:
        return web.json_response({"error": f"unknown template or no recipient: {task}"}, status=400)
    try:
        await asyncio.to_thread(deliver, render(task))
    except OSError as error:
        print(f"SMTP unavailable ({error}); asking sqsd to retry in 5 s", flush=True)
        return web.Response(status=503, headers={"Retry-After": "5"})
    print(f"sent {task['template']} to {task['to']}", flush=True)
    return web.json_response({"sent": True})


if __name__ == "__main__":
    app = web.Application()
    app.add_routes([web.post("/notify", notify)])
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=lambda _: None)
