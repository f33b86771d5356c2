"""Storage of the example: documents and shares in SQLite through SQLAlchemy 2.

A document's key is (tenant, local id); Warden sees it as `Document::"<tenant>/<local id>"`,
so the same local id in two tenants is two documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Engine, ForeignKeyConstraint, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


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

    @property
    def warden_id(self) -> str:
        return f"{self.tenant}/{self.local_id}"


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


def make_engine(database_url: str) -> Engine:
    connect_args = {"check_same_thread": False} if database_url.startswith("sqlite") else {}
    return create_engine(database_url, connect_args=connect_args)


def create_and_seed(engine: Engine) -> None:
    """Create the tables and add the seed documents that are missing."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
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
                    )
                )


def session_dependency(factory: sessionmaker[Session]) -> Callable[[], Iterator[Session]]:
    """A FastAPI dependency yielding one session per request."""

    def get_session() -> Iterator[Session]:
        with factory() as session:
            yield session

    return get_session
