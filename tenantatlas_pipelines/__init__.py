"""TenantAtlas inventory pipelines: per-tenant Intune inventory on Dagster and PostgreSQL."""
