"""A local SMTP sink (aiosmtpd) and a page listing what it received: where the worker's mail goes."""

import asyncio
import json
import os
from pathlib import Path

from aiohttp import web
from aiosmtpd.controller import Controller

MAILBOX = Path("data/mailbox.jsonl")


class Sink:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        with MAILBOX.open("a") as mailbox:
            mailbox.write(json.dumps(record) + "\n")
        print(f"received mail for {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 Message accepted for delivery"


async def mailbox(_: web.Request) -> web.Response:
    lines = MAILBOX.read_text().splitlines() if MAILBOX.exists() else []
    return web.json_response([json.loads(line) for line in lines])


async def main() -> None:
    MAILBOX.parent.mkdir(parents=True, exist_ok=True)
    controller = Controller(Sink(), hostname="127.0.0.1", port=int(os.environ["SMTP_PORT"]))
    controller.start()
    app = web.Application()
    app.add_routes([web.get("/", mailbox)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(os.environ["PORT"])).start()
    print(
        f"SMTP sink on 127.0.0.1:{os.environ['SMTP_PORT']}, mailbox on http://127.0.0.1:{os.environ['PORT']}/",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
