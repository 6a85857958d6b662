"""The requests the official CLI 0.0.10 sends, through the proxy, answered as the CLI needs.

(No build of CLI 0.0.10 is installed here, so this sends its requests as its source does:
``file upload`` (multipart part ``file``), ``file delete``, ``model list --featured``
(``?featured=true``, its price column), ``model run`` (the submit path without ``/async``) and
``model get-schema`` (``GET {base}/models/{provider}/{model_id}/api_schema``, no key; it needs
``servers[0].url`` https, or http on a loopback name, without a query, and
``post.requestBody`` / ``post.responses``).)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from yarl import URL

from tests.catalog.imagebytes import png
from tests.e2e.conftest import KEY, Stack

StackFactory = Callable[..., Awaitable[Stack]]
AUTH = {"Authorization": KEY}


async def test_the_cli_commands_work_through_the_proxy(make_stack: StackFactory) -> None:
    stack = await make_stack(schemas=True)
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("file", png(400, 400), filename="ref.png", content_type="image/png")
        async with http.post(f"{stack.proxy_url}/api/v1/media/files", data=form, headers=AUTH) as r:
            assert r.status == 200, await r.text()
            uploaded = await r.json()
        file_id = (uploaded.get("data") or uploaded)["file_id"]
        url = f"{stack.proxy_url}/api/v1/media/files/{file_id}"
        async with http.delete(url, headers=AUTH) as r:
            assert r.status == 200, await r.text()

        async with http.get(f"{stack.proxy_url}/api/v1/models?featured=true", headers=AUTH) as r:
            assert r.status == 200
            featured = (await r.json())["models"]
        assert featured
        assert all("price" in m and "proxy_validation" in m for m in featured)

        body = {"prompt": "a red fox in the snow", "duration": 5}
        submit = f"{stack.proxy_url}/api/v1/vidu/vidu-q3-t2v"
        async with http.post(submit, json=body, headers=AUTH) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["data"]["task_id"]

        async with http.get(f"{stack.proxy_url}/models/vidu/vidu-q3-t2v/api_schema") as r:
            assert r.status == 200
            assert r.headers["X-Modellix-Proxy-Schema-Hash"]
            document = await r.json()
        server = URL(document["servers"][0]["url"])
        # The endpoint names the proxy (plain http on loopback, which the CLI accepts).
        assert (server.scheme, server.host) == ("http", "127.0.0.1")
        assert server.path == "/api/v1/vidu/vidu-q3-t2v"
        assert not server.query_string
        assert document["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert "200" in document["post"]["responses"]
        async with http.head(f"{stack.proxy_url}/models/vidu/vidu-q3-t2v/api_schema") as r:
            assert r.status == 200
