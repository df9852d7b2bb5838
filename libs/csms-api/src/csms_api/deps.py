"""What every service's REST routes depend on: the service they serve and a database session.

A router is bound to its service instance (``binding.bind(service)`` as a router
dependency), not the app: the embedded ``csms up`` mounts several services' routers
into one app, and a test may run two replicas side by side. A service's ``api/deps.py``
makes its own binding and its ``Annotated`` aliases from it::

    _binding = ServiceBinding[MyService]("csms_my")
    bind_service, get_service = _binding.bind, _binding.get
    ServiceDep = Annotated[MyService, Depends(get_service)]
    SessionDep = Annotated[AsyncSession, Depends(_binding.session)]
"""

from collections.abc import AsyncIterator
from typing import Generic, Protocol, TypeVar

from fastapi import Depends, Request, params
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["ServiceBinding", "WithSessions"]


class WithSessions(Protocol):
    """A service whose routes read its database."""

    @property
    def factory(self) -> async_sessionmaker[AsyncSession]: ...


S = TypeVar("S", bound=WithSessions)


class ServiceBinding(Generic[S]):
    """The service instance a request's routes use, kept on the request under ``key``.

    Its dependencies are coroutines: FastAPI runs a plain ``def`` dependency in a worker
    thread, a thread hop (and a wait for the GIL) per request for a line of work."""

    def __init__(self, key: str) -> None:
        self._key = key

    def bind(self, service: S) -> params.Depends:
        """A router dependency that makes ``service`` the one this request's routes use."""

        async def bind(request: Request) -> None:
            setattr(request.state, self._key, service)

        dependency: params.Depends = Depends(bind)
        return dependency

    async def get(self, request: Request) -> S:
        """The service bound to this request's router."""
        return self._bound(request)

    async def session(self, request: Request) -> AsyncIterator[AsyncSession]:
        """A database session of the bound service, for the request's lifetime."""
        async with self._bound(request).factory() as session:
            yield session

    def _bound(self, request: Request) -> S:
        service: S = getattr(request.state, self._key)
        return service
