"""The documents API. Every route but /healthz is protected through `warden.fastapi`.

    /tenants/{tenant}/documents                 GET    list   (Tenant::"{tenant}"), then
                                                       the documents the caller may read
                                                       (one /v1/filter, applied in SQL)
    /tenants/{tenant}/documents/{doc_id}        GET    read   (Document::"{tenant}/{doc_id}")
    /tenants/{tenant}/documents/{doc_id}        PATCH  edit
    /tenants/{tenant}/documents/{doc_id}        DELETE delete
    /tenants/{tenant}/documents/{doc_id}/shares POST   share
    /me                                         GET    who the token's principal is

Run: `WARDEN_URL=http://127.0.0.1:8180 uvicorn --factory docs_app.main:create_app`.

Behind a gateway that asks Warden first (nginx `auth_request`, Caddy `forward_auth`, Envoy
`ext_authz`; docs/gateways.md) with `[context_token]` configured, set `WARDEN_CONTEXT_AUDIENCE`
to the audience Warden signs for this app (e.g. `docs-app`): the gateway's `X-Warden-Context`
then stands in for the app's own `list` check on the tenant (same action, same resource, no
other input), so that check costs no second call to Warden. The document routes still make
their own check: they send the document's properties, which the gateway's decision had not.
The list's rows are still filtered with the bearer token (`/v1/filter`).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from docs_app.db import (
    DOCUMENT_FIELDS,
    Document,
    Share,
    create_and_seed,
    make_engine,
    session_dependency,
)
from warden import AsyncWardenClient, Principal
from warden.fastapi import Authorized, LoadedResource, Warden


class DocumentOut(BaseModel):
    id: str = Field(description="The local id within the tenant")
    tenant: str
    title: str
    body: str
    owner: str
    classification: str

    @classmethod
    def of(cls, document: Document) -> "DocumentOut":
        return cls(
            id=document.local_id,
            tenant=document.tenant,
            title=document.title,
            body=document.body,
            owner=document.owner,
            classification=document.classification,
        )


def document_properties(document: Document) -> dict[str, Any]:
    """What Warden uses for a document its entity data does not know."""
    return {
        "tenant": {"__entity": {"type": "Tenant", "id": document.tenant}},
        "owner": {"__entity": {"type": "User", "id": document.owner}},
        "classification": document.classification,
    }


class DocumentPatch(BaseModel):
    title: str | None = Field(default=None, max_length=200)
    body: str | None = None


class ShareIn(BaseModel):
    user: str = Field(description="Local id of a user of the same tenant", pattern=r"^[^/]+$")


class SharesOut(BaseModel):
    document: str
    shared_with: list[str]


class PrincipalOut(BaseModel):
    type: str
    id: str
    tenant: str | None


def create_app(
    warden_url: str | None = None,
    database_url: str | None = None,
    *,
    warden_timeout: float = 2.0,
    context_audience: str | None = None,
) -> FastAPI:
    """Build the app; arguments default to `WARDEN_URL`, `DOCS_DATABASE_URL` and
    `WARDEN_CONTEXT_AUDIENCE` (unset: gateway context tokens are ignored)."""
    warden_url = warden_url or os.environ.get("WARDEN_URL", "http://127.0.0.1:8180")
    database_url = database_url or os.environ.get("DOCS_DATABASE_URL", "sqlite:///./docs.db")
    context_audience = context_audience or os.environ.get("WARDEN_CONTEXT_AUDIENCE") or None
    engine = make_engine(database_url)
    create_and_seed(engine)
    get_session = session_dependency(sessionmaker(engine, expire_on_commit=False))
    SessionDep = Annotated[Session, Depends(get_session)]

    warden = Warden(realm="docs", context_audience=context_audience)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncWardenClient(warden_url, timeout=warden_timeout) as client:
            warden.bind(client)
            yield
        engine.dispose()

    app = FastAPI(title="Documents (Warden example)", lifespan=lifespan)
    warden.install(app)
    app.state.warden = warden

    def load_document(tenant: str, doc_id: str, session: SessionDep) -> LoadedResource[Document]:
        document = session.get(Document, (tenant, doc_id))
        properties = document_properties(document) if document is not None else None
        return LoadedResource(id=f"{tenant}/{doc_id}", value=document, properties=properties)

    def authorized_document(action: str) -> Any:
        """`Authorized[Document]` for `action`, loaded by `load_document`, as a parameter type."""
        check = warden.authorize(action, "Document", load=load_document)
        return Annotated[Authorized[Document], Depends(check)]

    Readable = authorized_document("read")
    Editable = authorized_document("edit")
    Deletable = authorized_document("delete")
    Shareable = authorized_document("share")

    # A whole router protected at once: every route under it needs `list` on the tenant.
    listing = APIRouter(
        prefix="/tenants/{tenant}/documents",
        dependencies=[Depends(warden.authorize("list", "Tenant", id_param="tenant"))],
        tags=["documents"],
    )

    @listing.get("", response_model=list[DocumentOut])
    async def list_documents(
        tenant: str,
        session: SessionDep,
        readable: Annotated[Select[Any], Depends(warden.filter(Document, "read", DOCUMENT_FIELDS))],
    ) -> list[DocumentOut]:
        # Warden allowed `list` on Tenant::"{tenant}". Listing is not reading: `readable` is
        # already restricted (in SQL) to the documents a GET would serve; the route adds its
        # own scope and order.
        query = readable.where(Document.tenant == tenant).order_by(Document.local_id)
        rows = await run_in_threadpool(lambda: list(session.scalars(query)))
        return [DocumentOut.of(d) for d in rows]

    documents = APIRouter(prefix="/tenants/{tenant}/documents/{doc_id}", tags=["documents"])

    @documents.get("", response_model=DocumentOut)
    def read_document(auth: Readable) -> DocumentOut:
        assert auth.resource is not None
        return DocumentOut.of(auth.resource)

    @documents.patch("", response_model=DocumentOut)
    def edit_document(
        patch: DocumentPatch,
        session: SessionDep,
        auth: Editable,
    ) -> DocumentOut:
        document = auth.resource
        assert document is not None
        if patch.title is not None:
            document.title = patch.title
        if patch.body is not None:
            document.body = patch.body
        session.commit()
        return DocumentOut.of(document)

    @documents.delete("", status_code=204)
    def delete_document(session: SessionDep, auth: Deletable) -> None:
        session.delete(auth.resource)
        session.commit()

    @documents.post("/shares", status_code=201, response_model=SharesOut)
    def share_document(
        share: ShareIn,
        session: SessionDep,
        auth: Shareable,
    ) -> SharesOut:
        document = auth.resource
        assert document is not None
        exists = session.get(Share, (document.tenant, document.local_id, share.user))
        if exists is None:
            session.add(
                Share(
                    tenant=document.tenant,
                    local_id=document.local_id,
                    shared_with=share.user,
                    shared_by=auth.principal.id,
                )
            )
            session.commit()
        shared = session.scalars(
            select(Share.shared_with).where(
                Share.tenant == document.tenant, Share.local_id == document.local_id
            )
        )
        return SharesOut(document=document.local_id, shared_with=sorted(shared))

    @app.get("/me", response_model=PrincipalOut, tags=["identity"])
    async def me(principal: Annotated[Principal, Depends(warden.principal)]) -> PrincipalOut:
        return PrincipalOut(type=principal.type, id=principal.id, tenant=principal.tenant)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(listing)
    app.include_router(documents)
    return app
