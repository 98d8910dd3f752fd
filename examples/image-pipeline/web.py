"""The web tier: takes an image upload, stores it, and enqueues a resize task with boto3.

It knows nothing of conveyor: boto3 finds the queue through AWS_ENDPOINT_URL_SQS and the region in
the environment, and the queue URL in WORKERQUEUE (the variable EB's environment link sets).
"""

import asyncio
import io
import json
import os
import uuid
from pathlib import Path

import boto3
from aiohttp import web
from PIL import Image

IMAGES = Path(os.environ.get("IMAGES_DIR", "data"))
UPLOADS, THUMBS = IMAGES / "uploads", IMAGES / "thumbs"
SIZES = (64, 128, 256)
sqs = boto3.client("sqs")
QUEUE_URL = os.environ["WORKERQUEUE"]

PAGE = """<!doctype html><title>images</title><h1>Upload an image</h1>
<form method=post action=/upload enctype=multipart/form-data><input type=file name=image accept=image/*>
<button>Upload</button></form><p><form method=post action=/sample><button>Or make a sample image</button></form>
<h2>Thumbnails</h2>{thumbs}"""


async def enqueue(image_id: str, path: Path) -> None:
    body = json.dumps({"id": image_id, "path": str(path), "sizes": SIZES})
    await asyncio.to_thread(sqs.send_message, QueueUrl=QUEUE_URL, MessageBody=body)


async def store_and_enqueue(data: bytes) -> web.Response:
    image_id = uuid.uuid4().hex[:12]
    path = UPLOADS / f"{image_id}.img"
    path.write_bytes(data)
    await enqueue(image_id, path)
    return web.json_response({"id": image_id, "status": f"/images/{image_id}"}, status=202)


async def index(_: web.Request) -> web.Response:
    thumbs = "".join(f'<img src="/thumbs/{p.name}" title="{p.name}"> ' for p in sorted(THUMBS.glob("*-64.png")))
    return web.Response(text=PAGE.format(thumbs=thumbs or "none yet"), content_type="text/html")


async def upload(request: web.Request) -> web.Response:
    form = await request.post()
    field = form.get("image")
    if field is None or not hasattr(field, "file"):
        return web.json_response({"error": "send the image as the multipart field 'image'"}, status=400)
    return await store_and_enqueue(field.file.read())


async def sample(_: web.Request) -> web.Response:
    """A generated gradient, so the demo needs no image of your own."""
    image = Image.linear_gradient("L").convert("RGB").resize((640, 480))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return await store_and_enqueue(buffer.getvalue())


async def status(request: web.Request) -> web.Response:
    image_id = request.match_info["image_id"]
    done = sorted(p.name for p in THUMBS.glob(f"{image_id}-*.png"))
    return web.json_response({"id": image_id, "thumbnails": done, "done": len(done) == len(SIZES)})


def main() -> None:
    UPLOADS.mkdir(parents=True, exist_ok=True)
    THUMBS.mkdir(parents=True, exist_ok=True)
    app = web.Application(client_max_size=20 * 1024 * 1024)
    app.add_routes(
        [
            web.get("/", index),
            web.post("/upload", upload),
            web.post("/sample", sample),
            web.get("/images/{image_id}", status),
            web.static("/thumbs", THUMBS),
        ]
    )
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=lambda _: None)


if __name__ == "__main__":
    main()
