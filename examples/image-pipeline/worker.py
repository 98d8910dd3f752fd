"""The worker: sqsd POSTs each resize task here; a 2xx deletes it, anything else retries it later."""

import asyncio
import json
import os
from pathlib import Path

from aiohttp import web
from PIL import Image, UnidentifiedImageError

THUMBS = Path(os.environ.get("IMAGES_DIR", "data")) / "thumbs"


def make_thumbnails(source: Path, image_id: str, sizes: list[int]) -> list[str]:
    made = []
    with Image.open(source) as image:
        for size in sizes:
            thumb = image.copy()
            thumb.thumbnail((size, size))
            target = THUMBS / f"{image_id}-{size}.png"
            thumb.save(target.with_suffix(".tmp"), "PNG")
            target.with_suffix(".tmp").rename(target)  # appears whole or not at all
            made.append(target.name)
    return made


async def resize(request: web.Request) -> web.Response:
    task = json.loads(await request.read())
    attempt = request.headers.get("X-Aws-Sqsd-Receive-Count")
    try:
        made = await asyncio.to_thread(make_thumbnails, Path(task["path"]), task["id"], task["sizes"])
    except (UnidentifiedImageError, FileNotFoundError) as error:
        print(f"task {task['id']} (attempt {attempt}): cannot resize: {error}", flush=True)
        return web.json_response({"error": str(error)}, status=422)  # retried, then the DLQ
    print(f"task {task['id']} (attempt {attempt}): made {', '.join(made)}", flush=True)
    return web.json_response({"made": made})


if __name__ == "__main__":
    THUMBS.mkdir(parents=True, exist_ok=True)
    app = web.Application()
    app.add_routes([web.post("/resize", resize)])
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=lambda _: None)
