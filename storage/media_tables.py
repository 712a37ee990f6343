"""Tables of the PRM's media: ``blobs`` (one row per stored content, by SHA-256), ``binaries``
(FHIR Binary: a content type and a blob) and ``media_assets`` (the PRM's documents, FHIR
DocumentReference), each with search child tables keyed by (resource_id, position)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from storage.tables import ID_LENGTH, UtcDateTime, metadata

SHA256_LENGTH = 64


def search_child_tables(parent: str, *, foreign_key: bool = True) -> dict[str, Table]:
    """The token and reference child tables of ``parent`` (rows keyed by resource_id, a
    foreign key to ``parent`` unless ``foreign_key`` is False)."""

    def owner() -> Column[str]:
        keys = [ForeignKey(f"{parent}.id", ondelete="CASCADE")] if foreign_key else []
        return Column("resource_id", String(ID_LENGTH), *keys, primary_key=True)

    tokens = Table(
        f"{parent}_tokens", metadata, owner(),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("param", String(64), nullable=False),
        Column("system", Text),
        Column("code", Text),
        Column("text_norm", Text),
        Index(f"ix_{parent}_tokens_param_code", "param", "code"),
    )
    references = Table(
        f"{parent}_references", metadata, owner(),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("param", String(64), nullable=False),
        Column("target_type", String(64)),
        Column("target_id", String(ID_LENGTH)),
        Column("url", Text),
        Index(f"ix_{parent}_references_param_target", "param", "target_id", "target_type"),
    )
    return {"tokens": tokens, "references": references}


blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(SHA256_LENGTH), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha1_base64", String(28), nullable=False),
    Column("detected_type", Text),
    Column("stored_at", UtcDateTime(), nullable=False),
)

binaries = Table(
    "binaries",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("content_type", Text, nullable=False),
    Column("sha256", String(SHA256_LENGTH), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("security_context", Text),
    Column("remainder", Text),
    Index("ix_binaries_sha256", "sha256"),
    Index("ix_binaries_last_updated", "last_updated"),
)

media_assets = Table(
    "media_assets",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("patient_id", String(ID_LENGTH)),
    Column("status", String(32), nullable=False),
    Column("doc_status", String(32)),
    Column("category", String(32)),
    Column("source", String(32)),
    Column("type_system", Text),
    Column("type_code", Text),
    Column("description", Text),
    Column("document_date", UtcDateTime()),
    Column("binary_id", String(ID_LENGTH)),
    Column("sha256", String(SHA256_LENGTH)),
    Column("file_size", BigInteger),
    Column("content_type", Text),
    Column("title", Text),
    Column("remainder", Text),
    Column("description_search", Text),
    Column("description_exact", Text),
    Column("period_low", UtcDateTime()),
    Column("period_high", UtcDateTime()),
    Index("ix_media_assets_patient_id", "patient_id"),
    Index("ix_media_assets_sha256", "sha256"),
    Index("ix_media_assets_document_date", "document_date"),
    Index("ix_media_assets_last_updated", "last_updated"),
)

BINARY_CHILD_TABLES = search_child_tables("binaries")
MEDIA_ASSET_CHILD_TABLES = search_child_tables("media_assets")
