"""The fields of a posted form, or a 400 that says what is wrong with it.

aiohttp's own ``request.post()`` answers a body it cannot decode with an exception (a 500 here) and reads
invalid percent-encoded UTF-8 as U+FFFD, so a message body would be changed silently. Here a form is read
strictly: what cannot be read as the browser would have sent it is refused, and nothing is done.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict

URLENCODED = "application/x-www-form-urlencoded"


def _refused(text: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=f"{text} Send the form again from the console's own page.")


async def posted(request: web.Request) -> MultiDict[str]:
    """The form's text fields (files are not taken); a 400 for a body that cannot be read."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    try:
        if request.content_type == URLENCODED:
            body = await request.read()
            return MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
        data = await request.post()
    except UnicodeDecodeError:
        raise _refused("The form is not valid UTF-8 (after percent-decoding).") from None
    except web.RequestPayloadError:
        raise _refused(f"The form's body is not valid {encoding} data (Content-Encoding: {encoding}).") from None
    except HttpProcessingError as error:  # a multipart body's part headers
        raise _refused(f"The form could not be read as {request.content_type}: {error.message}.") from None
    except (ValueError, AssertionError, LookupError) as error:
        raise _refused(f"The form could not be read as {request.content_type}: {error}.") from None
    return MultiDict((name, value) for name, value in data.items() if isinstance(value, str))
