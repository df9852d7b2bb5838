"""Routes whose one-line docstring is their OpenAPI summary."""

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute


class DocumentedRoute(APIRoute):
    """An APIRoute summarised by the first line of its endpoint's docstring."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if kwargs.get("summary") is None and endpoint.__doc__:
            kwargs["summary"] = endpoint.__doc__.strip().splitlines()[0]
        super().__init__(path, endpoint, **kwargs)
