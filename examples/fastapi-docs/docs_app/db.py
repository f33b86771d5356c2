"""Storage of the example: documents, folders and shares in SQLite through SQLAlchemy 2.

A document's key is (tenant, local id); Warden sees it as `Document::"<tenant>/<local id>"`,
so the same local id in two tenants is two documents. Folders nest (`Folder in [Folder]` in
the pack's schema); a document names the folder it is directly in. The rows mirror what
Warden's entity data says of the same documents and folders (examples/saas/entities.json):
Warden decides a known document on its own data, and a list is filtered on these columns, so
the two must agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Engine, ForeignKeyConstraint, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from warden.sqlalchemy import FieldMap, in_tree


class Base(DeclarativeBase):
    pass


class Document(Base):
    __tablename__ = "documents"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    local_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(default="")
    # The owner's Warden id, e.g. "acme/bob".
    owner: Mapped[str] = mapped_column(String(200))
    # "public", "internal" or "restricted".
    classification: Mapped[str] = mapped_column(String(32))
    # The Warden id of the folder the document is directly in, if any.
    folder: Mapped[str | None] = mapped_column(String(200), default=None)

    @property
    def warden_id(self) -> str:
        return f"{self.tenant}/{self.local_id}"


class Folder(Base):
    __tablename__ = "folders"

    # The folder's Warden id, e.g. "acme/contracts/2026".
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    # The Warden id of the folder it is in, if any.
    parent: Mapped[str | None] = mapped_column(String(200))


class Share(Base):
    __tablename__ = "shares"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "local_id"], ["documents.tenant", "documents.local_id"], ondelete="CASCADE"
        ),
    )

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    local_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # Local user id within the tenant.
    shared_with: Mapped[str] = mapped_column(String(128), primary_key=True)
    shared_by: Mapped[str] = mapped_column(String(200))


# Where each attribute of Warden's `Document` is stored, for the data filter of list routes
# (`warden.filter`): a plan naming anything else is refused, never ignored. Entity-valued
# attributes (`tenant`, `owner`) are columns holding the entity's Warden id; `resource in
# Folder::"…"` is the document's folder or any folder below it.
DOCUMENT_FIELDS = FieldMap(
    id=Document.tenant + "/" + Document.local_id,
    fields={
        "tenant": Document.tenant,
        "owner": Document.owner,
        "classification": Document.classification,
    },
    member_of={"Folder": in_tree(Document.folder, Folder.id, Folder.parent)},
    resource_type="Document",
)

# Matches the folders of examples/saas/entities.json: (id, tenant, parent).
SEED_FOLDERS = [
    ("acme/contracts", "acme", None),
    ("acme/contracts/2026", "acme", "acme/contracts"),
    ("globex/contracts", "globex", None),
    ("globex/contracts/2026", "globex", "globex/contracts"),
]

# Matches the documents of examples/saas/entities.json.
SEED_DOCUMENTS = [
    ("acme", "roadmap", "Acme roadmap 2027", "acme/bob", "internal"),
    ("acme", "salaries", "Acme salaries", "acme/alice", "restricted"),
    ("acme", "nda", "NDA with Initech", "acme/alice", "internal"),
    ("globex", "roadmap", "Globex roadmap", "globex/bob", "internal"),
    ("globex", "salaries", "Globex salaries", "globex/alice", "restricted"),
    ("globex", "nda", "Globex NDA", "globex/alice", "internal"),
    ("public", "handbook", "Customer handbook", "operator/sam", "public"),
]
# The folder each seed document is directly in (the others are in none).
SEED_DOCUMENT_FOLDERS = {
    ("acme", "nda"): "acme/contracts/2026",
    ("globex", "nda"): "globex/contracts/2026",
}


def make_engine(database_url: str) -> Engine:
    connect_args = {"check_same_thread": False} if database_url.startswith("sqlite") else {}
    return create_engine(database_url, connect_args=connect_args)


def create_and_seed(engine: Engine) -> None:
    """Create the tables and add the seed folders and documents that are missing."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        folders = set(session.scalars(select(Folder.id)))
        for folder_id, tenant, parent in SEED_FOLDERS:
            if folder_id not in folders:
                session.add(Folder(id=folder_id, tenant=tenant, parent=parent))
        existing = {(d.tenant, d.local_id) for d in session.scalars(select(Document))}
        for tenant, local_id, title, owner, classification in SEED_DOCUMENTS:
            if (tenant, local_id) not in existing:
                session.add(
                    Document(
                        tenant=tenant,
                        local_id=local_id,
                        title=title,
                        body=f"The text of {title}.",
                        owner=owner,
                        classification=classification,
                        folder=SEED_DOCUMENT_FOLDERS.get((tenant, local_id)),
                    )
                )


def session_dependency(factory: sessionmaker[Session]) -> Callable[[], Iterator[Session]]:
    """A FastAPI dependency yielding one session per request."""

    def get_session() -> Iterator[Session]:
        with factory() as session:
            yield session

    return get_session
