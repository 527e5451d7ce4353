"""The app database's tables (SQLAlchemy Core); the Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

drawings = Table(
    "drawings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("filename", Text, nullable=False),  # for display only, never a path
    Column("content_type", Text, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("age_years", Integer, nullable=False),
    Column("subject", Text),
    Column("storage_key", Text, nullable=False, unique=True),
    Column("created_at", Text, nullable=False),
)

analyses = Table(
    "analyses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("drawing_id", Integer, ForeignKey("drawings.id"), nullable=False),
    Column("created_at", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("age_group", Text, nullable=False),
    Column("anomaly_score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("is_anomaly", Boolean, nullable=False),
    Column("normalised_score", Float, nullable=False),
    Column("processing_time_ms", Float, nullable=False),
    # What the uploader gets to read the analysis back: 128 random bits (app.records). The
    # sequential id stays internal (admin only).
    Column("public_id", Text, nullable=False),
    Column("reasons", Text),  # JSON list of {feature, direction, share, text}; 0003
    Index("ix_analyses_created_at", "created_at"),
    Index("ix_analyses_public_id", "public_id", unique=True),
)

app_config = Table(
    "app_config",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", Text, nullable=False),
)

admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("token_sha256", Text, primary_key=True),
    Column("csrf_token", Text, nullable=False),
    Column("password_fingerprint", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
)
